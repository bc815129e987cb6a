//! Generation: generation rules matched against the registry, SLXs named and rendered.
//!
//! The order of everything follows upstream so that names and first-wins choices are the
//! same: CodeCollections in config order, codebundles and rule files by name, rules in file
//! order, resource types in rule order, resources by qualified name (the registry keeps them
//! sorted, so the listing order of a cluster does not matter).

use crate::collection::CodeCollection;
use crate::config::WorkspaceInfo;
use crate::kubernetes::CustomRef;
use crate::kubernetes::kinds::Kind;
use crate::map_rules::MapRules;
use crate::naming::algorithm::short_base_name;
use crate::naming::{self, Ledger, NameEvent, NameMode, SlxCandidate, SlxName};
use crate::output::Skipped;
use crate::render::item::{ItemInput, PreparedItem};
use crate::render::{Renderer, RuleSource, SlxRenderInput, WorkspaceContext, WorkspaceVars};
use crate::resource::{Registry, Resource};
use crate::rules::{self, GenerationRule, ResourceTypeRef, ResourceTypeSpec, RuleFile, SlxSpec};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use steward_model::workspace::is_valid_slx_name;

mod map;
mod matching;

/// One usable generation rule with where it came from.
struct LoadedRule {
    source: RuleSource,
    rule: GenerationRule,
    /// Per SLX definition: the short base name after the load-time de-duplication.
    short_bases: Vec<String>,
    /// Per SLX definition: its identity for the name ledger (without qualifier values).
    identities: Vec<String>,
}

/// Every rule, template and `SKILL.md` of the loaded CodeCollections.
pub struct RuleSet {
    rules: Vec<LoadedRule>,
    templates: Vec<(String, BTreeMap<String, String>)>,
    skills: HashMap<String, String>,
    referenced: BTreeSet<ResourceTypeSpec>,
    /// Groups and relationships for `workspace.yaml`.
    map: MapRules,
}

impl RuleSet {
    /// Parses every rule file. Unreadable files and unusable rules are reported in `skipped`;
    /// codebundles whose tasks carry an excluded tag are left out.
    pub fn load(
        info: &WorkspaceInfo,
        collections: &[CodeCollection],
        skipped: &mut Vec<Skipped>,
    ) -> RuleSet {
        let mut set = RuleSet {
            rules: Vec::new(),
            templates: Vec::new(),
            skills: HashMap::new(),
            referenced: BTreeSet::new(),
            map: MapRules::default(),
        };
        let mut definitions = 0usize;
        for collection in collections {
            for bundle in &collection.bundles {
                let location = format!("{} codebundles/{}", collection.repo_url, bundle.name);
                if !info.task_tag_exclusions.is_empty() {
                    let tags: BTreeSet<String> = bundle
                        .robot_files
                        .iter()
                        .flat_map(|f| rules::task_tags(&f.text))
                        .collect();
                    if info.excludes_task_tags(&tags) {
                        skipped.push(Skipped {
                            item: format!("codebundle {}", bundle.name),
                            location,
                            reason: "a task carries a tag listed in taskTagExclusions".into(),
                        });
                        continue;
                    }
                }
                for w in &bundle.warnings {
                    skipped.push(Skipped {
                        item: "file".into(),
                        location: location.clone(),
                        reason: w.clone(),
                    });
                }
                let source = |path: &str| RuleSource {
                    repo_url: collection.repo_url.clone(),
                    git_ref: collection.git_ref.clone(),
                    codebundle: bundle.name.clone(),
                    rule_file_path: path.to_string(),
                };
                let id = source("").codebundle_id();
                set.templates.push((id.clone(), bundle.templates.clone()));
                if let Some(skill) = &bundle.skill {
                    set.skills.insert(id, skill.clone());
                }
                let mut base_counts: BTreeMap<String, usize> = BTreeMap::new();
                for file in &bundle.rule_files {
                    let parsed = match RuleFile::parse(&file.text, &file.path) {
                        Ok(parsed) => parsed,
                        Err(e) => {
                            skipped.push(Skipped {
                                item: "rule file".into(),
                                location: file.path.clone(),
                                reason: e.to_string(),
                            });
                            continue;
                        }
                    };
                    for w in &parsed.warnings {
                        skipped.push(Skipped {
                            item: "rule".into(),
                            location: w.to_string(),
                            reason: w.message.clone(),
                        });
                    }
                    for rule in parsed.rules {
                        if !rule.is_indexed() {
                            skipped.push(Skipped {
                                item: format!("rule {}", rule.index + 1),
                                location: at(&file.path, rule.line),
                                reason: format!("platform {} is not discovered by Steward yet; only kubernetes is", rule.platform),
                            });
                            continue;
                        }
                        set.referenced.extend(rule.referenced_types());
                        let mut short_bases = Vec::new();
                        let mut identities = Vec::new();
                        for slx in &rule.slxs {
                            short_bases.push(short_base_name(
                                &slx.base_name,
                                slx.shortened_base_name.as_deref(),
                            ));
                            let n = base_counts.entry(slx.base_name.clone()).or_default();
                            *n += 1;
                            identities.push(format!(
                                "{}|{}|{}#{}",
                                collection.repo_url, bundle.name, slx.base_name, n
                            ));
                            definitions += 1;
                        }
                        set.rules.push(LoadedRule {
                            source: source(&file.path),
                            rule,
                            short_bases,
                            identities,
                        });
                    }
                }
            }
        }
        // Upstream numbers every short base name held by more than one definition, across all
        // loaded codebundles.
        let mut all: Vec<String> = set
            .rules
            .iter()
            .flat_map(|r| r.short_bases.iter().cloned())
            .collect();
        debug_assert_eq!(all.len(), definitions);
        naming::dedupe_short_bases(&mut all);
        let mut all = all.into_iter();
        for r in &mut set.rules {
            for b in &mut r.short_bases {
                *b = all.next().expect("one per definition");
            }
        }
        set
    }

    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    /// Custom resources the rules refer to, for the live indexer.
    pub fn custom_refs(&self) -> Vec<CustomRef> {
        let mut refs: BTreeSet<CustomRef> = BTreeSet::new();
        for spec in self
            .referenced
            .iter()
            .filter(|s| s.platform == "kubernetes")
        {
            if let ResourceTypeRef::Custom {
                plural,
                group,
                version,
            } = &spec.reference
            {
                refs.insert(CustomRef {
                    plural: plural.clone(),
                    group: group.clone(),
                    version: version.clone(),
                });
            }
        }
        refs.into_iter().collect()
    }

    /// The same, as kinds, for reading kubectl output (the kind name is not known yet).
    pub fn custom_kinds(&self) -> Vec<Kind> {
        self.custom_refs()
            .into_iter()
            .map(|c| Kind {
                resource_type: format!("{}.{}", c.plural, c.group),
                group: c.group,
                version: c.version.unwrap_or_default(),
                plural: c.plural,
                kind: String::new(),
                namespaced: true,
            })
            .collect()
    }

    /// Adds map customization rules (runwhen-local's `MapCustomizationRules`).
    pub fn customize_map(&mut self, map: MapRules) {
        self.map = map;
    }
}

fn at(path: &str, line: Option<usize>) -> String {
    match line {
        Some(l) => format!("{path}:{l}"),
        None => path.to_string(),
    }
}

/// What generation found besides the files (which go to the caller's sink as they are made).
pub struct Generated {
    pub slxs: usize,
    pub skipped: Vec<Skipped>,
    pub warnings: Vec<String>,
}

/// An SLX found by matching, before it has a name.
struct Emitted<'a> {
    rule: usize,
    slx: usize,
    resource: &'a Resource,
    qualifiers: Vec<(String, String)>,
    child_resource_names: Vec<String>,
    resources: BTreeMap<String, &'a Resource>,
}

/// A qualifier's value for a resource, as upstream's Kubernetes platform handler gives it.
fn qualifier_value(name: &str, resource: &Resource, registry: &Registry) -> Option<String> {
    let name = name.to_ascii_lowercase();
    let cluster = registry.cluster_of(resource);
    match name.as_str() {
        "resource" => Some(resource.name.clone()),
        "cluster" => resource.cluster.clone(),
        "context" => cluster
            .and_then(|c| c.context.clone())
            .or_else(|| resource.context.clone()),
        "namespace" => resource.namespace.clone(),
        "subscription_id" | "subscription_name" => cluster?
            .payload
            .value()
            .get(&name)?
            .as_str()
            .map(str::to_string),
        _ => None,
    }
}

/// Matches every rule, names and renders the SLXs. Each file of the tree is handed to
/// `files` (path relative to the tree, text) as soon as its SLX is rendered, in a
/// deterministic order; a path handed over twice keeps its last text.
pub fn generate(
    info: &WorkspaceInfo,
    rules: &RuleSet,
    registry: &Registry,
    mode: NameMode,
    ledger: &mut Ledger,
    files: &mut dyn FnMut(String, String),
) -> Generated {
    let mut skipped = Vec::new();
    let mut warnings = Vec::new();
    let variables = info.variables();

    // Match, as upstream: an SLX is identified by its unshortened name; a second resource
    // arriving at the same name joins it as a child when `resource` is not a qualifier.
    let mut emitted: Vec<Emitted> = Vec::new();
    let mut by_full: HashMap<String, usize> = HashMap::new();
    let mut unresolved: BTreeMap<(usize, usize), (String, usize)> = BTreeMap::new();
    for hit in matching::match_all(&rules.rules, registry, &variables) {
        let (ri, resource, resources) = (hit.rule, hit.resource, hit.resources);
        let loaded = &rules.rules[ri];
        for (si, slx) in loaded.rule.slxs.iter().enumerate() {
            if !slx.emitted_at(resource.lod) {
                continue;
            }
            let mut qualifiers = Vec::new();
            let mut missing = None;
            for q in &slx.qualifiers {
                match qualifier_value(q, resource, registry) {
                    Some(v) => qualifiers.push((q.clone(), v)),
                    None => {
                        missing = Some(q.clone());
                        break;
                    }
                }
            }
            if let Some(q) = missing {
                let entry = unresolved.entry((ri, si)).or_insert((q, 0));
                entry.1 += 1;
                continue;
            }
            let values: Vec<String> = qualifiers.iter().map(|(_, v)| v.clone()).collect();
            let full = naming::qualified_name(&slx.base_name, &values, 0, NameMode::Current);
            match by_full.get(&full) {
                Some(&existing) => {
                    if !slx
                        .qualifiers
                        .iter()
                        .any(|q| q.eq_ignore_ascii_case("resource"))
                    {
                        emitted[existing]
                            .child_resource_names
                            .push(resource.name.clone());
                    } else {
                        skipped.push(Skipped {
                                item: format!("SLX {} for {}", slx.base_name, resource.qualified_name),
                                location: at(&loaded.source.rule_file_path, slx.line),
                                reason: format!("another rule already generates an SLX named {full} for this resource (same baseName and qualifiers)"),
                            });
                    }
                }
                None => {
                    by_full.insert(full, emitted.len());
                    emitted.push(Emitted {
                        rule: ri,
                        slx: si,
                        resource,
                        qualifiers,
                        child_resource_names: vec![resource.name.clone()],
                        resources: resources.clone(),
                    });
                }
            }
        }
    }
    for ((ri, si), (qualifier, count)) in unresolved {
        let loaded = &rules.rules[ri];
        let slx = &loaded.rule.slxs[si];
        skipped.push(Skipped {
            item: format!("SLX {} ({count} resources)", slx.base_name),
            location: at(&loaded.source.rule_file_path, slx.line),
            reason: format!("qualifier {qualifier:?} has no value for these resources"),
        });
    }

    // Name.
    let candidates: Vec<SlxCandidate> = emitted
        .iter()
        .map(|e| {
            let loaded = &rules.rules[e.rule];
            let values: Vec<String> = e.qualifiers.iter().map(|(_, v)| v.clone()).collect();
            SlxCandidate {
                key: format!("{}|{}", loaded.identities[e.slx], values.join("\u{1f}")),
                short_base: loaded.short_bases[e.slx].clone(),
                qualifier_values: values,
            }
        })
        .collect();
    let (names, events) = naming::assign(&info.workspace_name, &candidates, mode, ledger);
    for event in events {
        match event {
            NameEvent::Collision { name, count } => {
                warnings.push(format!("{count} SLXs would be named {name}; they were numbered as runwhen-local does"))
            }
            NameEvent::Kept { kept, computed } => warnings.push(format!(
                "kept the name {kept} from the name ledger (the naming rules now give {computed}); delete .steward/names.json to rename"
            )),
            NameEvent::Taken { computed, given } => {
                warnings.push(format!("{computed} belongs to another SLX in the name ledger; the new SLX is named {given}"))
            }
            NameEvent::TooLong(e) => skipped.push(Skipped { item: "SLX".into(), location: e.name.clone(), reason: e.to_string() }),
        }
    }

    // Render.
    let mut renderer = Renderer::new();
    for (id, templates) in &rules.templates {
        for e in renderer.add_codebundle(id, templates) {
            skipped.push(Skipped {
                item: "template".into(),
                location: e.template().to_string(),
                reason: e.to_string(),
            });
        }
    }
    let workspace = WorkspaceContext::new(workspace_vars(info, mode));
    let mut named: Vec<(&Emitted, SlxName)> = Vec::new();
    for (e, name) in emitted.iter().zip(names) {
        let Some(name) = name else { continue };
        let loaded = &rules.rules[e.rule];
        let slx = &loaded.rule.slxs[e.slx];
        if !is_valid_slx_name(&name.full) {
            skipped.push(Skipped {
                item: format!("SLX {}", name.full),
                location: at(&loaded.source.rule_file_path, slx.line),
                reason: "the name has characters the platform refuses (letters, digits, '-', '_' and '.' only)".into(),
            });
            continue;
        }
        named.push((e, name));
    }
    // Prepare in order (an output path goes to the first item that claims it, as upstream),
    // render on every core, then hand over SLX by SLX; in batches, so that prepared and
    // rendered items of the whole workspace are never held at once. The next batch is
    // prepared (on this thread) while the current one renders, so that no core waits for
    // the preparation, which has to run in order.
    let mut claimed: HashSet<String> = HashSet::new();
    let mut written: HashSet<String> = HashSet::new();
    let prepare = |batch: &[(&Emitted, SlxName)], claimed: &mut HashSet<String>| {
        let mut prepared = Batch {
            slxs: Vec::new(),
            jobs: Vec::new(),
            skipped: Vec::new(),
        };
        for (e, name) in batch {
            let loaded = &rules.rules[e.rule];
            let slx = &loaded.rule.slxs[e.slx];
            let index = prepared.slxs.len();
            let mut pending = PendingSlx {
                name: name.clone(),
                skill: rules.skills.get(&loaded.source.codebundle_id()).cloned(),
                failed: false,
            };
            prepare_slx(
                &renderer,
                &workspace,
                registry,
                loaded,
                slx,
                e,
                index,
                &mut pending,
                &mut prepared.jobs,
                claimed,
                &mut prepared.skipped,
            );
            prepared.slxs.push(pending);
        }
        prepared
    };
    let mut batches = named.chunks(RENDER_BATCH);
    let mut current = batches.next().map(|b| prepare(b, &mut claimed));
    while let Some(mut batch) = current.take() {
        let (results, next) = std::thread::scope(|scope| {
            let rendering = scope.spawn(|| {
                let prepared: Vec<&PreparedItem> = batch.jobs.iter().map(|j| &j.prepared).collect();
                renderer.render_many(&prepared)
            });
            let next = batches.next().map(|b| prepare(b, &mut claimed));
            let results = rendering
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (results, next)
        });
        current = next;
        // In the order of a run that prepares and renders each batch in turn.
        skipped.append(&mut batch.skipped);
        let mut outputs: Vec<Vec<(String, String)>> = vec![Vec::new(); batch.slxs.len()];
        for (job, result) in batch.jobs.iter().zip(results) {
            let pending = &mut batch.slxs[job.slx];
            match result {
                Ok(out) => {
                    warnings.extend(
                        out.warnings
                            .iter()
                            .map(|w| format!("SLX {}: {w}", pending.name.full)),
                    );
                    outputs[job.slx].push((out.path, out.text));
                }
                Err(err) => {
                    skipped.push(Skipped {
                        item: if job.is_slx {
                            format!("SLX {}", pending.name.full)
                        } else {
                            format!("{} of SLX {}", job.item_type, pending.name.full)
                        },
                        location: err.template().to_string(),
                        reason: err.to_string(),
                    });
                    // When slx.yaml fails, the SLX is skipped as a whole.
                    pending.failed |= job.is_slx;
                }
            }
        }
        for (pending, rendered) in batch.slxs.into_iter().zip(outputs) {
            if pending.failed || rendered.is_empty() {
                continue;
            }
            written.insert(pending.name.directory.clone());
            if let Some(skill) = pending.skill {
                files(format!("slxs/{}/SKILL.md", pending.name.directory), skill);
            }
            for (path, text) in rendered {
                files(path, text);
            }
        }
    }
    let mapped = map::apply(
        &rules.map,
        &renderer,
        &workspace,
        registry,
        &rules.rules,
        &named,
        &written,
    );
    skipped.extend(mapped.skipped);
    match renderer.render_workspace(&workspace, &mapped.groups, &mapped.relationships) {
        Ok(item) => {
            warnings.extend(item.warnings.iter().map(|w| w.to_string()));
            files(item.path, item.text);
        }
        Err(e) => skipped.push(Skipped {
            item: "workspace.yaml".into(),
            location: e.template().to_string(),
            reason: e.to_string(),
        }),
    }
    Generated {
        slxs: written.len(),
        skipped,
        warnings,
    }
}

fn workspace_vars(info: &WorkspaceInfo, mode: NameMode) -> WorkspaceVars {
    let mut vars = WorkspaceVars::new(&info.workspace_name, &info.owner_email, &info.location_id);
    vars.location_name = info.location_name.clone();
    vars.custom = info.custom.clone();
    vars.secrets = info.secrets.clone();
    vars.overrides = info.overrides.clone();
    vars.name_mode = mode;
    vars
}

/// SLXs prepared and rendered together.
const RENDER_BATCH: usize = 512;

/// An SLX with a name, being rendered.
struct PendingSlx {
    name: SlxName,
    skill: Option<String>,
    /// Its slx.yaml did not render (or prepare): none of its files are written.
    failed: bool,
}

/// A batch of SLXs, prepared.
struct Batch {
    slxs: Vec<PendingSlx>,
    jobs: Vec<Job>,
    /// What preparing it skipped.
    skipped: Vec<Skipped>,
}

/// One output item ready to render.
struct Job {
    slx: usize,
    is_slx: bool,
    item_type: String,
    prepared: PreparedItem,
}

/// Prepares one SLX's items (slx.yaml first), leaving out paths an earlier item claimed.
#[allow(clippy::too_many_arguments)]
fn prepare_slx(
    renderer: &Renderer,
    workspace: &WorkspaceContext,
    registry: &Registry,
    loaded: &LoadedRule,
    slx: &SlxSpec,
    e: &Emitted<'_>,
    index: usize,
    pending: &mut PendingSlx,
    jobs: &mut Vec<Job>,
    claimed: &mut HashSet<String>,
    skipped: &mut Vec<Skipped>,
) {
    let aggregated = !slx
        .qualifiers
        .iter()
        .any(|q| q.eq_ignore_ascii_case("resource"));
    let context = workspace.slx(&SlxRenderInput {
        resource: e.resource,
        registry,
        base_name: slx.base_name.clone(),
        name: pending.name.clone(),
        qualifiers: e.qualifiers.clone(),
        child_resource_names: if aggregated {
            e.child_resource_names.clone()
        } else {
            Vec::new()
        },
        resources: e.resources.clone(),
        source: loaded.source.clone(),
    });
    let mut items: Vec<&rules::OutputItemSpec> = slx.items_at(e.resource.lod).collect();
    items.sort_by_key(|i| {
        i.item_type
            .as_deref()
            .map(|t| !t.eq_ignore_ascii_case("slx"))
            .unwrap_or(true)
    });
    for item in items {
        let item_type = item.item_type.clone().unwrap_or_default();
        let is_slx = item_type.eq_ignore_ascii_case("slx");
        let template_name = item.template_name.clone().unwrap_or_else(|| {
            format!(
                "{}-{}.yaml",
                slx.base_template_name.as_deref().unwrap_or(&slx.base_name),
                item_type
            )
        });
        let input = ItemInput {
            output_type: item_type.clone(),
            template_name,
            path: item.path.clone(),
            template_variables: item.template_variables.clone(),
        };
        match renderer.prepare(&context, &input) {
            // Another item already claimed this path: the first one wins, as upstream.
            Ok(prepared) if !claimed.insert(prepared.path.clone()) => {}
            Ok(prepared) => jobs.push(Job {
                slx: index,
                is_slx,
                item_type,
                prepared,
            }),
            Err(err) => {
                skipped.push(Skipped {
                    item: if is_slx {
                        format!("SLX {}", pending.name.full)
                    } else {
                        format!("{item_type} of SLX {}", pending.name.full)
                    },
                    location: err.template().to_string(),
                    reason: err.to_string(),
                });
                if is_slx {
                    pending.failed = true;
                    return;
                }
            }
        }
    }
}
