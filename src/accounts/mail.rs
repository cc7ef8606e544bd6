//! Outgoing mail: the password-reset message, sent over SMTP (`SMTP_URL`), through MailPace's HTTP API
//! (`MAILPACE_API_KEY`, the original's provider), or, with neither configured, written to the log so
//! a developer can follow the link.
//!
//! Callers never tell the requester whether sending worked (`forgot-password` answers the same either
//! way): a failure is returned here so it is logged and traced, not shown.

use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::config::AccountsConfig;

/// The original's timeout for the MailPace call.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("SMTP_URL is not a valid smtp:// or smtps:// URL: {0}")]
    SmtpUrl(String),
    #[error("DEFAULT_FROM_EMAIL '{0}' is not an email address")]
    From(String),
    #[error("'{0}' is not a deliverable address")]
    To(String),
    #[error("building the message: {0}")]
    Build(String),
    #[error("SMTP delivery failed: {0}")]
    Smtp(String),
    #[error("MailPace request failed: {0}")]
    MailPace(String),
}

/// A password-reset message to one person.
#[derive(Debug, Clone)]
pub struct ResetMail {
    pub to: String,
    pub username: String,
    pub link: String,
}

impl ResetMail {
    pub const SUBJECT: &'static str = "Password Reset - Squirrel Stats";

    pub fn text(&self) -> String {
        format!(
            "Hello {name},\n\nSomeone (hopefully you) asked to reset the password of your Squirrel Stats account.\n\
             Open this link to choose a new one:\n\n{link}\n\n\
             This link will expire in 24 hours and works once. If you did not ask for it, ignore this mail:\n\
             your password stays as it is.\n\nThe Squirrel Stats Team\n",
            name = self.username,
            link = self.link
        )
    }

    pub fn html(&self) -> String {
        let name = html_escape(&self.username);
        let link = html_escape(&self.link);
        format!(
            "<!doctype html><html><body style=\"font-family:sans-serif;color:#111\">\
             <p>Hello {name},</p>\
             <p>Someone (hopefully you) asked to reset the password of your Squirrel Stats account.</p>\
             <p><a href=\"{link}\" style=\"display:inline-block;background:#4F46E5;color:#fff;padding:12px 20px;\
             text-decoration:none\">Reset Your Password</a></p>\
             <p>Or paste this link into your browser: <br><a href=\"{link}\">{link}</a></p>\
             <p>This link will expire in 24 hours and works once. If you did not ask for it, ignore this mail: \
             your password stays as it is.</p>\
             <p>The Squirrel Stats Team</p></body></html>"
        )
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Where mail goes.
#[derive(Clone)]
pub enum Mailer {
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        from: Mailbox,
    },
    MailPace {
        client: reqwest::Client,
        url: String,
        token: String,
        from: String,
    },
    /// No mailer configured: the message (and its link) is logged.
    Log,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mailer::Smtp { .. } => "Mailer::Smtp",
            Mailer::MailPace { .. } => "Mailer::MailPace",
            Mailer::Log => "Mailer::Log",
        })
    }
}

impl Mailer {
    /// SMTP when `SMTP_URL` is set, else MailPace when `MAILPACE_API_KEY` is, else the log.
    ///
    /// # Errors
    /// A malformed `SMTP_URL` or `DEFAULT_FROM_EMAIL`, so a typo stops the server at start instead of
    /// silently losing every reset mail.
    pub fn from_config(config: &AccountsConfig) -> Result<Mailer, MailError> {
        let from = config.default_from_email.trim();
        if let Some(url) = config.smtp_url.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
            let from: Mailbox = from.parse().map_err(|_| MailError::From(from.to_string()))?;
            let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&smtp_url_with_tls(url))
                .map_err(|err| MailError::SmtpUrl(err.to_string()))?
                .timeout(Some(SEND_TIMEOUT))
                .build();
            return Ok(Mailer::Smtp { transport, from });
        }
        if let Some(token) = config.mailpace_api_key.as_deref().map(str::trim).filter(|k| !k.is_empty()) {
            let client = reqwest::Client::builder()
                .timeout(SEND_TIMEOUT)
                .build()
                .map_err(|err| MailError::MailPace(err.to_string()))?;
            return Ok(Mailer::MailPace {
                client,
                url: config.mailpace_url.trim().to_string(),
                token: token.to_string(),
                from: from.to_string(),
            });
        }
        Ok(Mailer::Log)
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Mailer::Smtp { .. } => "smtp",
            Mailer::MailPace { .. } => "mailpace",
            Mailer::Log => "log",
        }
    }

    /// Sends (or logs) the message.
    ///
    /// # Errors
    /// The relay or the API refused it, or could not be reached.
    pub async fn send_reset(&self, mail: &ResetMail) -> Result<(), MailError> {
        match self {
            Mailer::Smtp { transport, from } => {
                let to: Mailbox = mail.to.parse().map_err(|_| MailError::To(mail.to.clone()))?;
                let message = lettre::Message::builder()
                    .from(from.clone())
                    .to(to)
                    .subject(ResetMail::SUBJECT)
                    .multipart(MultiPart::alternative_plain_html(mail.text(), mail.html()))
                    .map_err(|err| MailError::Build(err.to_string()))?;
                transport.send(message).await.map_err(|err| MailError::Smtp(err.to_string()))?;
                Ok(())
            }
            Mailer::MailPace { client, url, token, from } => {
                let body = serde_json::json!({
                    "from": from,
                    "to": mail.to,
                    "subject": ResetMail::SUBJECT,
                    "textbody": mail.text(),
                    "htmlbody": mail.html(),
                });
                let response = client
                    .post(url)
                    .header("Accept", "application/json")
                    .header("MailPace-Server-Token", token)
                    .json(&body)
                    .send()
                    .await
                    .map_err(|err| MailError::MailPace(err.without_url().to_string()))?;
                let status = response.status();
                if status.is_success() {
                    Ok(())
                } else {
                    let text = response.text().await.unwrap_or_default();
                    Err(MailError::MailPace(format!("HTTP {status}: {}", text.chars().take(200).collect::<String>())))
                }
            }
            Mailer::Log => {
                tracing::warn!(
                    to = %mail.to,
                    link = %mail.link,
                    "no mailer configured (SMTP_URL or MAILPACE_API_KEY): password-reset link logged instead of sent"
                );
                Ok(())
            }
        }
    }
}

/// `smtp://…:587` without a `tls=` parameter means STARTTLS (required), as mail providers document
/// port 587; lettre alone would speak plain text there. Port 25 and explicit `tls=` stay as given.
fn smtp_url_with_tls(url: &str) -> String {
    let Ok(parsed) = url::Url::parse(url) else { return url.to_string() };
    let has_tls = parsed.query_pairs().any(|(k, _)| k == "tls");
    if parsed.scheme() == "smtp" && !has_tls && parsed.port() == Some(587) {
        let sep = if parsed.query().is_some() { '&' } else { '?' };
        format!("{url}{sep}tls=required")
    } else {
        url.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_587_means_starttls() {
        assert_eq!(
            smtp_url_with_tls("smtp://u:p@mail.example.com:587"),
            "smtp://u:p@mail.example.com:587?tls=required"
        );
        assert_eq!(smtp_url_with_tls("smtp://relay:25"), "smtp://relay:25");
        assert_eq!(smtp_url_with_tls("smtp://h:587?tls=opportunistic"), "smtp://h:587?tls=opportunistic");
        assert_eq!(smtp_url_with_tls("smtps://u:p@h:465"), "smtps://u:p@h:465");
    }

    /// A runtime, because lettre's connection pool spawns its reaper task when built.
    #[tokio::test]
    async fn config_picks_smtp_then_mailpace_then_log() {
        let mut config = AccountsConfig::for_tests();
        assert_eq!(Mailer::from_config(&config).unwrap().kind(), "log");
        config.mailpace_api_key = Some("token".into());
        assert_eq!(Mailer::from_config(&config).unwrap().kind(), "mailpace");
        config.smtp_url = Some("smtp://user:pass@127.0.0.1:2525".into());
        assert_eq!(Mailer::from_config(&config).unwrap().kind(), "smtp");
        config.smtp_url = Some("http://nope".into());
        assert!(matches!(Mailer::from_config(&config), Err(MailError::SmtpUrl(_))));
    }

    #[test]
    fn the_mail_escapes_what_it_quotes() {
        let mail = ResetMail { to: "a@x".into(), username: "<b>".into(), link: "https://x/r?a=1&b=2".into() };
        assert!(mail.html().contains("&lt;b&gt;") && mail.html().contains("a=1&amp;b=2"));
        assert!(mail.text().contains("24 hours") && mail.text().contains("https://x/r?a=1&b=2"));
    }
}
