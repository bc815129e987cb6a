//! Group commit: writes that arrive while a transaction is being written wait and go into the
//! next one together.
//!
//! A commit costs about the same for one write as for many (SQLite writes the same pages,
//! PostgreSQL flushes its log once), so under load the cost per write falls several times,
//! and a lone write pays nothing extra. Each caller is answered only after the transaction
//! holding its write committed. When a group's transaction fails, every write in it is tried
//! again in a transaction of its own, so each gets its own answer and one that cannot be
//! written does not fail the others.

use crate::error::{ApiError, ApiResult};
use std::future::Future;
use tokio::sync::{mpsc, oneshot};

/// What a group writes.
pub(crate) trait Writer: Send + Sync + 'static {
    /// One caller's write.
    type Job: Send + 'static;
    /// What that caller is told once it committed.
    type Answer: Send + 'static;

    /// Roughly how much work a job is, to bound a group.
    fn weight(job: &Self::Job) -> usize;

    /// Writes `jobs` in one transaction and commits it. `Err` when the transaction failed
    /// (nothing of it was written); otherwise one answer per job, in order (a job may be
    /// answered with its own error, such as a conflict, without failing the others).
    fn commit(
        &self,
        jobs: &[Self::Job],
    ) -> impl Future<Output = ApiResult<Vec<ApiResult<Self::Answer>>>> + Send;
}

type Waiting<W> = (
    <W as Writer>::Job,
    oneshot::Sender<ApiResult<<W as Writer>::Answer>>,
);

/// The sending side; the writer task ends when every copy of it is gone.
pub(crate) struct Group<W: Writer> {
    jobs: mpsc::UnboundedSender<Waiting<W>>,
}

impl<W: Writer> Clone for Group<W> {
    fn clone(&self) -> Self {
        Group {
            jobs: self.jobs.clone(),
        }
    }
}

impl<W: Writer> Group<W> {
    /// Starts the writer task; a group holds jobs up to `max_weight` in all.
    pub(crate) fn start(writer: W, max_weight: usize) -> Self {
        let (jobs, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(writer, rx, max_weight));
        Group { jobs }
    }

    /// Writes `job` with whatever else is waiting; answers once committed.
    pub(crate) async fn write(&self, job: W::Job) -> ApiResult<W::Answer> {
        let (done, answer) = oneshot::channel();
        let stopped = || ApiError::Unavailable503("the platform is shutting down".into());
        self.jobs.send((job, done)).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

async fn run<W: Writer>(writer: W, mut rx: mpsc::UnboundedReceiver<Waiting<W>>, max_weight: usize) {
    while let Some(first) = rx.recv().await {
        let mut weight = W::weight(&first.0);
        let mut waiting = vec![first];
        while weight < max_weight {
            let Ok(next) = rx.try_recv() else { break };
            weight += W::weight(&next.0);
            waiting.push(next);
        }
        let (jobs, answers): (Vec<_>, Vec<_>) = waiting.into_iter().unzip();
        match writer.commit(&jobs).await {
            Ok(results) => {
                for (answer, result) in answers.into_iter().zip(results) {
                    let _ = answer.send(result);
                }
            }
            Err(error) if jobs.len() == 1 => {
                if let Some(answer) = answers.into_iter().next() {
                    let _ = answer.send(Err(error));
                }
            }
            Err(_) => {
                for (job, answer) in jobs.into_iter().zip(answers) {
                    let result = match writer.commit(std::slice::from_ref(&job)).await {
                        Ok(mut results) => results.pop().unwrap_or_else(|| {
                            Err(ApiError::Unavailable503("nothing was written".into()))
                        }),
                        Err(error) => Err(error),
                    };
                    let _ = answer.send(result);
                }
            }
        }
    }
}
