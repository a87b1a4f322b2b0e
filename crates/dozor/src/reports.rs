//! The report scheduler: every 15 s it generates the reports whose next run is due (each
//! claimed first, so that of several nodes sharing the state store exactly one runs it),
//! and e-mails the runs waiting for delivery — scheduled ones and those generated through
//! the API with `deliver` — through the SMTP settings of the report's Alertmanager
//! receiver, to the report's recipients: the HTML as the body, the CSV attached. Each
//! generation and delivery is audited; a failed delivery is recorded with its reason and not
//! retried (the next run is).

use std::sync::Arc;
use std::time::Duration;

use dozor_api::AppState;
use dozor_api::reports::{Format, ReportSpec, next_run};
use dozor_audit::{Entry, Outcome};
use dozor_model::TenantId;
use dozor_state::reports::StoredRun;

/// How often due reports and pending deliveries are looked for.
const TICK: Duration = Duration::from_secs(15);

/// Runs the scheduler until `stop` turns true.
pub async fn run(
    state: AppState,
    notifications: Arc<dozor_alerting::shared::Notifications>,
    audit: Arc<dozor_audit::AuditLog>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        generate_due(&state, &audit).await;
        deliver_pending(&state, &notifications, &audit).await;
    }
}

async fn generate_due(state: &AppState, audit: &Arc<dozor_audit::AuditLog>) {
    let now = dozor_model::time::now_ms();
    let due = match state.store().due_reports(now).await {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "cannot list due reports");
            return;
        }
    };
    for (tenant, report) in due {
        let Some(expected) = report.next_run_at_ms else {
            continue;
        };
        let spec: Option<ReportSpec> = serde_json::from_str(&report.definition).ok();
        let next = spec
            .as_ref()
            .and_then(|s| s.schedule.as_ref())
            .and_then(|s| next_run(s, now));
        match state
            .store()
            .claim_report_run(&tenant, &report.id, expected, next)
            .await
        {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                tracing::warn!(error = %e, report = %report.id, "cannot claim a report run");
                continue;
            }
        }
        let outcome =
            dozor_api::routes::reports::generate_run(state, &report, &tenant, "schedule", true)
                .await;
        let entry = Entry::new(
            tenant.as_str(),
            "system",
            "report.generate",
            format!("report/{}", report.id),
            if outcome.is_ok() {
                Outcome::Success
            } else {
                Outcome::Failure
            },
        )
        .detail("trigger", "schedule");
        let entry = match &outcome {
            Ok(run) => entry.detail("run", run.id.as_str()),
            Err(e) => {
                tracing::warn!(report = %report.id, error = %e.message(), "cannot generate a scheduled report");
                entry.detail("error", e.message())
            }
        };
        crate::notify::audit_system(audit, entry).await;
    }
}

async fn deliver_pending(
    state: &AppState,
    notifications: &dozor_alerting::shared::Notifications,
    audit: &Arc<dozor_audit::AuditLog>,
) {
    let pending = match state.store().pending_report_deliveries().await {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "cannot list pending report deliveries");
            return;
        }
    };
    for (tenant, run) in pending {
        let outcome = deliver(state, notifications, &tenant, &run).await;
        let now = dozor_model::time::now_ms();
        let recorded = match &outcome {
            Ok(()) => {
                state
                    .store()
                    .finish_report_delivery(&tenant, &run.id, Ok(now))
                    .await
            }
            Err(e) => {
                tracing::warn!(report = %run.report_id, error = %e, "cannot deliver a report");
                state
                    .store()
                    .finish_report_delivery(&tenant, &run.id, Err(e))
                    .await
            }
        };
        if let Err(e) = recorded {
            tracing::warn!(error = %e, "cannot record a report delivery");
        }
        let entry = Entry::new(
            tenant.as_str(),
            "system",
            "report.deliver",
            format!("report/{}", run.report_id),
            if outcome.is_ok() {
                Outcome::Success
            } else {
                Outcome::Failure
            },
        )
        .detail("run", run.id.as_str())
        .detail("recipients", run.recipients.as_str());
        let entry = match &outcome {
            Ok(()) => entry,
            Err(e) => entry.detail("error", e.as_str()),
        };
        crate::notify::audit_system(audit, entry).await;
    }
}

/// E-mails one run: the SMTP server and sender of the report's receiver, its recipients.
async fn deliver(
    state: &AppState,
    notifications: &dozor_alerting::shared::Notifications,
    tenant: &TenantId,
    run: &StoredRun,
) -> Result<(), String> {
    let report = state
        .store()
        .report(tenant, &run.report_id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the report was deleted before it was sent")?;
    let spec: ReportSpec =
        serde_json::from_str(&report.definition).map_err(|e| format!("definition: {e}"))?;
    let receiver = spec
        .receiver
        .as_deref()
        .ok_or("the report names no receiver")?;
    let config = &notifications.config(tenant).loaded;
    let email_config = config
        .receivers
        .iter()
        .find(|r| r.name == receiver)
        .ok_or_else(|| {
            format!("no receiver {receiver:?} in the tenant's Alertmanager configuration")
        })?
        .email_configs
        .first()
        .ok_or_else(|| format!("receiver {receiver:?} has no email_configs"))?;
    let mut smtp = email_config.smtp(config.global.as_ref())?;
    smtp.to = serde_json::from_str(&run.recipients).map_err(|e| format!("recipients: {e}"))?;
    if smtp.to.is_empty() {
        return Err("no recipients".into());
    }
    let range = format!(
        "{} — {} UTC",
        minute(run.range_start_ms),
        minute(run.range_end_ms)
    );
    let html = if spec.formats.contains(&Format::Html) {
        run.html.clone()
    } else {
        format!(
            "<!DOCTYPE html>\n<html><body><p>{}: {range}. The numbers are in the attached CSV.</p></body></html>\n",
            run.report_name.replace('<', "&lt;")
        )
    };
    let mut attachments = Vec::new();
    if spec.formats.contains(&Format::Csv) {
        attachments.push((
            "report.csv".to_owned(),
            "text/csv".to_owned(),
            run.csv.clone().into_bytes(),
        ));
    }
    let email = dozor_alerting::email::Email {
        subject: format!("{} ({range})", run.report_name),
        text: format!(
            "{}\n{range}\n\nThe report is the HTML part of this message{}.\n",
            run.report_name,
            if attachments.is_empty() {
                ""
            } else {
                "; its numbers are in report.csv"
            }
        ),
        html,
        headers: Vec::new(),
        snapshot: Vec::new(),
        attachments,
    };
    crate::notify::send_email(&smtp, &email).await
}

fn minute(ms: i64) -> String {
    let s = dozor_model::time::rfc3339_ns(ms.saturating_mul(1_000_000));
    s.get(..16).unwrap_or(&s).replace('T', " ")
}
