//! The window a provider's signed time must fall in: how old, and how far
//! ahead of this server's clock, a webhook may be.

use std::time::Duration;

use time::OffsetDateTime;

use crate::{RejectionKind, WebhookRejection};

/// How far from this server's clock a signed time may be; each bound is
/// unchecked while `None`. Refusals are [`RejectionKind::Stale`], to be
/// checked only once the signature holds, so they never tell a forger
/// anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeWindow {
    pub(crate) max_age: Option<Duration>,
    pub(crate) max_future_skew: Option<Duration>,
}

impl TimeWindow {
    /// No bound: every signed time is accepted.
    pub(crate) const OPEN: Self = Self {
        max_age: None,
        max_future_skew: None,
    };

    /// At most `tolerance` old and `tolerance` ahead, as the providers that
    /// document one window say it.
    pub(crate) const fn both_ways(tolerance: Duration) -> Self {
        Self {
            max_age: Some(tolerance),
            max_future_skew: Some(tolerance),
        }
    }

    /// Refuses `signed`, which the request calls `what` ("the event's
    /// timestamp"), if it lies outside the window.
    pub(crate) fn check(&self, what: &str, signed: OffsetDateTime) -> Result<(), WebhookRejection> {
        if *self == Self::OPEN {
            return Ok(());
        }
        let age = OffsetDateTime::now_utc() - signed;
        if let Some(max_age) = self.max_age
            && age > max_age
        {
            return Err(WebhookRejection::new(
                RejectionKind::Stale,
                format!(
                    "{what} is {} s old; this endpoint accepts webhooks up to {} s old",
                    age.whole_seconds(),
                    max_age.as_secs()
                ),
            ));
        }
        if let Some(skew) = self.max_future_skew
            && -age > skew
        {
            return Err(WebhookRejection::new(
                RejectionKind::Stale,
                format!(
                    "{what} is {} s ahead of this server's clock; at most {} s is accepted",
                    -age.whole_seconds(),
                    skew.as_secs()
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_only_outside_its_bounds() {
        let now = OffsetDateTime::now_utc();
        let minute = Duration::from_secs(60);
        let window = TimeWindow::both_ways(5 * minute);
        for (offset, accepted) in [(-4, true), (4, true), (-6, false), (6, false)] {
            let at = now + time::Duration::minutes(offset);
            assert_eq!(window.check("t", at).is_ok(), accepted, "{offset} min");
        }
        let ahead = now + time::Duration::days(365 * 100);
        assert!(TimeWindow::OPEN.check("t", ahead).is_ok());
        let past_only = TimeWindow {
            max_age: Some(minute),
            max_future_skew: None,
        };
        assert!(past_only.check("t", ahead).is_ok());
        let error = past_only
            .check("the webhook-timestamp header", now - 2 * minute)
            .unwrap_err();
        assert_eq!(error.kind(), RejectionKind::Stale);
        assert!(
            error
                .to_string()
                .contains("the webhook-timestamp header is 120 s old")
        );
    }
}
