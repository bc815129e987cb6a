{{/* Names: everything derives from the release, so two releases can share a namespace. */}}
{{- define "steward-runner.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "steward-runner.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "steward-runner.selectorLabels" -}}
app.kubernetes.io/name: {{ include "steward-runner.name" . | quote }}
app.kubernetes.io/instance: {{ .Release.Name | quote }}
{{- end -}}

{{- define "steward-runner.labels" -}}
{{ include "steward-runner.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: steward
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "steward-runner.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "steward-runner.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false: name the ServiceAccount the runner runs as" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* An image reference; registryOverride replaces every image's registry. Call with
     (dict "root" $ "image" .Values.images.x). */}}
{{- define "steward-runner.image" -}}
{{- $registry := default .image.registry .root.Values.registryOverride -}}
{{- if $registry -}}
{{- printf "%s/%s:%s" (trimSuffix "/" $registry) .image.repository (toString .image.tag) -}}
{{- else -}}
{{- printf "%s:%s" .image.repository (toString .image.tag) -}}
{{- end -}}
{{- end -}}

{{/* The image the runner container runs: the runtime image when tasks run inside it. */}}
{{- define "steward-runner.runnerImage" -}}
{{- if eq .Values.runner.executor "process" -}}
{{- include "steward-runner.image" (dict "root" . "image" .Values.images.runtime) -}}
{{- else -}}
{{- include "steward-runner.image" (dict "root" . "image" .Values.images.steward) -}}
{{- end -}}
{{- end -}}

{{- define "steward-runner.runnerPullPolicy" -}}
{{- if eq .Values.runner.executor "process" -}}
{{- .Values.images.runtime.pullPolicy -}}
{{- else -}}
{{- .Values.images.steward.pullPolicy -}}
{{- end -}}
{{- end -}}

{{- define "steward-runner.imagePullSecretNames" -}}
{{- range .Values.imagePullSecrets }}
- {{ if kindIs "map" . }}{{ .name }}{{ else }}{{ . }}{{ end }}
{{- end }}
{{- end -}}

{{- define "steward-runner.imagePullSecrets" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
{{- range . }}
  - name: {{ if kindIs "map" . }}{{ .name }}{{ else }}{{ . }}{{ end }}
{{- end }}
{{- end }}
{{- end -}}

{{- define "steward-runner.proxyEnabled" -}}
{{- if or .Values.proxy.httpProxy .Values.proxy.httpsProxy -}}true{{- end -}}
{{- end -}}

{{- define "steward-runner.caEnabled" -}}
{{- if or .Values.customCA.secretName .Values.customCA.configMapName -}}true{{- end -}}
{{- end -}}

{{/* Where the trusted bundle is inside every pod. */}}
{{- define "steward-runner.caFile" -}}/etc/steward/ca/ca-certificates.crt{{- end -}}

{{/* Proxy and trust variables, for every container (and handed to task pods and pools). */}}
{{- define "steward-runner.proxyCaEnv" -}}
{{- if include "steward-runner.proxyEnabled" . }}
{{- if .Values.proxy.httpProxy }}
{{- range $name := list "HTTP_PROXY" "http_proxy" }}
- name: {{ $name }}
  value: {{ $.Values.proxy.httpProxy | quote }}
{{- end }}
{{- end }}
{{- if .Values.proxy.httpsProxy }}
{{- range $name := list "HTTPS_PROXY" "https_proxy" }}
- name: {{ $name }}
  value: {{ $.Values.proxy.httpsProxy | quote }}
{{- end }}
{{- end }}
{{- range $name := list "NO_PROXY" "no_proxy" }}
- name: {{ $name }}
  value: {{ $.Values.proxy.noProxy | quote }}
{{- end }}
{{- end }}
{{- if include "steward-runner.caEnabled" . }}
{{- range $name := list "SSL_CERT_FILE" "REQUESTS_CA_BUNDLE" "CURL_CA_BUNDLE" "NODE_EXTRA_CA_CERTS" "GIT_SSL_CAINFO" }}
- name: {{ $name }}
  value: {{ include "steward-runner.caFile" $ }}
{{- end }}
{{- end }}
{{- end -}}

{{/* Volumes holding the custom CA: its source and, when appended to the system CAs, the
     combined bundle an init container writes. */}}
{{- define "steward-runner.caVolumes" -}}
{{- if include "steward-runner.caEnabled" . }}
- name: ca-source
{{- if .Values.customCA.secretName }}
  secret:
    secretName: {{ .Values.customCA.secretName }}
    items:
      - key: {{ .Values.customCA.key }}
        path: {{ if .Values.customCA.appendToSystem }}custom-ca.crt{{ else }}ca-certificates.crt{{ end }}
{{- else }}
  configMap:
    name: {{ .Values.customCA.configMapName }}
    items:
      - key: {{ .Values.customCA.key }}
        path: {{ if .Values.customCA.appendToSystem }}custom-ca.crt{{ else }}ca-certificates.crt{{ end }}
{{- end }}
{{- if .Values.customCA.appendToSystem }}
- name: ca-bundle
  emptyDir:
    sizeLimit: 16Mi
{{- end }}
{{- end }}
{{- end -}}

{{- define "steward-runner.caMounts" -}}
{{- if include "steward-runner.caEnabled" . }}
- name: {{ if .Values.customCA.appendToSystem }}ca-bundle{{ else }}ca-source{{ end }}
  mountPath: /etc/steward/ca
  readOnly: true
{{- end }}
{{- end -}}

{{/* The init container that appends the custom CA to the image's system bundle. Call with
     (dict "root" $ "image" <reference> "pullPolicy" <policy>). */}}
{{- define "steward-runner.caInitContainer" -}}
{{- if and (include "steward-runner.caEnabled" .root) .root.Values.customCA.appendToSystem }}
- name: ca-bundle
  image: {{ .image }}
  imagePullPolicy: {{ .pullPolicy }}
  command:
    - /bin/sh
    - -c
    - cat /etc/ssl/certs/ca-certificates.crt /etc/steward/ca-source/custom-ca.crt > /etc/steward/ca/ca-certificates.crt
  securityContext:
    {{- toYaml .root.Values.securityContext | nindent 4 }}
  resources:
    requests:
      cpu: 10m
      memory: 16Mi
    limits:
      cpu: 100m
      memory: 64Mi
  volumeMounts:
    - name: ca-source
      mountPath: /etc/steward/ca-source
      readOnly: true
    - name: ca-bundle
      mountPath: /etc/steward/ca
{{- end }}
{{- end -}}

{{/* The Secret holding one cloud's credentials, or nothing. */}}
{{- define "steward-runner.cloudSecretName" -}}
{{- if .creds.existingSecret -}}
{{- .creds.existingSecret -}}
{{- else if .creds.data -}}
{{- printf "%s-%s" (include "steward-runner.fullname" .root) .cloud -}}
{{- end -}}
{{- end -}}

{{- define "steward-runner.registrationSecretName" -}}
{{- if .Values.registrationToken.existingSecret -}}
{{- .Values.registrationToken.existingSecret -}}
{{- else if .Values.registrationToken.value -}}
{{- printf "%s-registration" (include "steward-runner.fullname" .) -}}
{{- else -}}
{{- fail "registrationToken: set existingSecret (a Secret holding the token) or value (the token, from `steward token create --location <location>`)" -}}
{{- end -}}
{{- end -}}
