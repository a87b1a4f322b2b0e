//! `alerting.actions`: automatic actions (`dozor_alerting::action`) run when the
//! dispatcher makes a notification carrying a firing alert they match. Each run — done,
//! failed, refused for an unsafe value, or skipped by the hourly budget — is appended to
//! the audit chain (`action.run`, actor `action:<name>`, the alert's fingerprint, the HTTP
//! status or exit code and the duration) and, when the alert's group has an open
//! incident, to its timeline.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use dozor_alerting::action::{Action, ActionConfig, Limiter, Run, Verdict};
use dozor_alerting::{Alert, Notification};
use dozor_audit::{AuditLog, Entry, Outcome};
use dozor_model::TenantId;
use dozor_model::time::now_ms;
use dozor_state::Store;
use dozor_state::incidents::IncidentEvent;

/// The configured actions with their bookkeeping.
pub struct Actions {
    list: Vec<(Action, TenantId, Mutex<Limiter>)>,
    audit: Arc<AuditLog>,
    store: Store,
}

impl std::fmt::Debug for Actions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Actions")
            .field("actions", &self.list.len())
            .finish_non_exhaustive()
    }
}

/// Checks the configured actions (`dozor check config` and start-up).
pub fn compile(configs: &[ActionConfig]) -> Result<Vec<(Action, TenantId)>, String> {
    let mut names = std::collections::BTreeSet::new();
    configs
        .iter()
        .map(|c| {
            dozor_alerting::config::unique_name(&mut names, "actions", &c.name)?;
            let tenant =
                dozor_alerting::config::entry_tenant("actions", &c.name, c.tenant.as_ref())?;
            Ok((Action::compile(c)?, tenant))
        })
        .collect()
}

impl Actions {
    /// The actions of `configs`; disabled ones are kept (they are reported, never run).
    pub fn new(
        configs: &[ActionConfig],
        audit: Arc<AuditLog>,
        store: Store,
    ) -> anyhow::Result<Actions> {
        let list = compile(configs)
            .map_err(anyhow::Error::msg)?
            .into_iter()
            .map(|(a, t)| {
                if a.config.enabled {
                    tracing::info!(action = %a.config.name, tenant = %t, "automatic action enabled");
                } else {
                    tracing::info!(action = %a.config.name, "automatic action configured but disabled (enabled: false)");
                }
                (a, t, Mutex::new(Limiter::default()))
            })
            .collect();
        Ok(Actions { list, audit, store })
    }

    /// Whether any action is enabled.
    pub fn any_enabled(&self) -> bool {
        self.list.iter().any(|(a, _, _)| a.config.enabled)
    }

    /// Runs the enabled actions that `n` (a notification of `tenant`) calls for, each in
    /// its own task.
    pub fn on_notification(self: &Arc<Self>, tenant: &TenantId, n: &Notification) {
        for (i, (action, t, limiter)) in self.list.iter().enumerate() {
            if !action.config.enabled || t != tenant {
                continue;
            }
            for alert in action.alerts(n) {
                let verdict = limiter
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .admit(alert, action.config.max_per_hour, now_ms());
                if verdict == Verdict::Done {
                    continue;
                }
                let me = Arc::clone(self);
                let (tenant, alert, group) = (tenant.clone(), alert.clone(), n.group_key.clone());
                tokio::spawn(async move { me.run(i, &tenant, &alert, &group, verdict).await });
            }
        }
    }

    async fn run(&self, i: usize, tenant: &TenantId, alert: &Alert, group: &str, verdict: Verdict) {
        let (action, _, _) = &self.list[i];
        let name = &action.config.name;
        let started = Instant::now();
        let (outcome, result) = match verdict {
            Verdict::RateLimited => (
                Outcome::Denied,
                format!(
                    "skipped: more than {} runs in the last hour",
                    action.config.max_per_hour
                ),
            ),
            _ => match action.run_for(alert) {
                Err(e) => (Outcome::Denied, format!("refused: {e}")),
                Ok(run) => match execute(&run, action.config.timeout).await {
                    Ok(r) => (Outcome::Success, r),
                    Err(e) => (Outcome::Failure, e),
                },
            },
        };
        let took = started.elapsed();
        match outcome {
            Outcome::Success => {
                tracing::info!(action = %name, %tenant, result = %result, "automatic action ran")
            }
            _ => {
                tracing::warn!(action = %name, %tenant, result = %result, "automatic action did not run through")
            }
        }
        let entry = Entry::new(
            tenant.as_str(),
            format!("action:{name}"),
            "action.run",
            format!("alert/{}", alert.fingerprint()),
            outcome,
        )
        .detail("result", result.as_str())
        .detail("alertname", alert.labels.get("alertname").unwrap_or(""))
        .detail(
            "duration_ms",
            u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
        );
        crate::notify::audit_system(&self.audit, entry).await;
        match self.store.open_incident_of_group(tenant, group).await {
            Ok(Some(incident)) => {
                let ev = IncidentEvent {
                    seq: 0,
                    at_ms: now_ms(),
                    kind: "action".into(),
                    actor: format!("action:{name}"),
                    text: format!("{name}: {result}"),
                    data: serde_json::json!({"fingerprint": alert.fingerprint()}).to_string(),
                };
                if let Err(e) = self
                    .store
                    .add_incident_event(tenant, &incident.id, &ev)
                    .await
                {
                    tracing::warn!(action = %name, error = %e, "cannot add an action to the incident timeline");
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(action = %name, error = %e, "cannot look for the incident of an action")
            }
        }
    }
}

/// Runs one action; a sentence about what came of it.
async fn execute(run: &Run, timeout: Duration) -> Result<String, String> {
    match run {
        Run::Http {
            method,
            url,
            headers,
            body,
        } => {
            let body = (!body.is_empty() || method != "GET").then(|| body.as_bytes().to_vec());
            let status =
                dozor_ingest::probe::send_http(url, method, headers, body, timeout).await?;
            if (200..300).contains(&status) {
                Ok(format!("HTTP {status}"))
            } else {
                Err(format!("HTTP {status}"))
            }
        }
        Run::Command { path, args } => {
            let child = tokio::process::Command::new(path)
                .args(args)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| format!("cannot start {path}: {e}"))?;
            let out = tokio::time::timeout(timeout, child.wait_with_output())
                .await
                .map_err(|_| format!("{path} did not finish within {timeout:?}; killed"))?
                .map_err(|e| format!("{path}: {e}"))?;
            if out.status.success() {
                Ok("exit 0".into())
            } else {
                let stderr = String::from_utf8_lossy(&out.stderr);
                let first = stderr
                    .lines()
                    .next()
                    .unwrap_or("")
                    .chars()
                    .take(200)
                    .collect::<String>();
                Err(format!("{}: {first}", out.status))
            }
        }
    }
}
