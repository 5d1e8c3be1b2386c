//! Ten fingers: positions (ISO/IEC 19794-4 finger position codes), the per-finger quality policy (threshold,
//! best of N attempts), declared exceptions with reason codes, and the completeness rule: a record is complete
//! with ten fingers or ten decisions.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Finger positions with their ISO/IEC 19794-4 (and ANSI/NIST-ITL) codes 1-10.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum FingerPosition {
    RightThumb = 1,
    RightIndex = 2,
    RightMiddle = 3,
    RightRing = 4,
    RightLittle = 5,
    LeftThumb = 6,
    LeftIndex = 7,
    LeftMiddle = 8,
    LeftRing = 9,
    LeftLittle = 10,
}

impl FingerPosition {
    /// All ten, in code order.
    pub const ALL: [FingerPosition; 10] = [
        FingerPosition::RightThumb,
        FingerPosition::RightIndex,
        FingerPosition::RightMiddle,
        FingerPosition::RightRing,
        FingerPosition::RightLittle,
        FingerPosition::LeftThumb,
        FingerPosition::LeftIndex,
        FingerPosition::LeftMiddle,
        FingerPosition::LeftRing,
        FingerPosition::LeftLittle,
    ];

    /// The ISO/IEC 19794-4 finger position code.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// How the operator says it.
    pub fn label(self) -> &'static str {
        match self {
            FingerPosition::RightThumb => "right thumb",
            FingerPosition::RightIndex => "right index finger",
            FingerPosition::RightMiddle => "right middle finger",
            FingerPosition::RightRing => "right ring finger",
            FingerPosition::RightLittle => "right little finger",
            FingerPosition::LeftThumb => "left thumb",
            FingerPosition::LeftIndex => "left index finger",
            FingerPosition::LeftMiddle => "left middle finger",
            FingerPosition::LeftRing => "left ring finger",
            FingerPosition::LeftLittle => "left little finger",
        }
    }
}

/// Why a finger is not captured. Codes follow ANSI/NIST-ITL 1-2011 amputated-or-bandaged codes (`XX` amputation,
/// `UP` unable to print), refined for the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExceptionReason {
    /// Missing finger (ANSI/NIST `XX`).
    Amputated,
    /// Temporarily not printable: bandage, cast, injury (ANSI/NIST `UP`).
    Bandaged,
    /// Present but no usable print after the allowed attempts (worn ridges, skin condition) (ANSI/NIST `UP`).
    UnableToCapture,
}

impl ExceptionReason {
    /// The ANSI/NIST-ITL code.
    pub fn code(self) -> &'static str {
        match self {
            ExceptionReason::Amputated => "XX",
            ExceptionReason::Bandaged | ExceptionReason::UnableToCapture => "UP",
        }
    }
}

/// Threshold and attempts for one finger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FingerRule {
    /// Minimum quality score (0-100) to accept an attempt at once.
    pub threshold: u8,
    /// Attempts before the best one is kept (best of N).
    pub attempts: u8,
}

/// A per-finger change to the default rule; what is not given stays as the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FingerOverride {
    pub threshold: Option<u8>,
    pub attempts: Option<u8>,
}

/// The capture policy: a default rule and per-finger overrides (configuration section `[fingerprint_policy]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    #[serde(flatten)]
    pub default: FingerRule,
    /// Per-finger overrides, e.g. `[fingerprint_policy.fingers.right-little]` with `threshold = 30`.
    #[serde(default)]
    pub fingers: BTreeMap<FingerPosition, FingerOverride>,
    /// After the last attempt, keep the best image below the threshold (flagged) instead of requiring an
    /// exception.
    #[serde(default = "yes")]
    pub keep_best_below_threshold: bool,
}

fn yes() -> bool {
    true
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            default: FingerRule {
                threshold: 40,
                attempts: 3,
            },
            fingers: BTreeMap::new(),
            keep_best_below_threshold: true,
        }
    }
}

/// A policy that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("{file}:{line}:{column}: {message}")]
    Invalid {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{file}: key `{key}`: {message}")]
    Value {
        file: String,
        key: String,
        message: String,
    },
}

impl Policy {
    /// The rule for `position`.
    pub fn rule(&self, position: FingerPosition) -> FingerRule {
        let o = self.fingers.get(&position).copied().unwrap_or_default();
        FingerRule {
            threshold: o.threshold.unwrap_or(self.default.threshold),
            attempts: o.attempts.unwrap_or(self.default.attempts),
        }
    }

    /// Parses the `[fingerprint_policy]` table of a TOML file; `file` names it in errors.
    pub fn from_toml(file: &str, src: &str) -> Result<Policy, PolicyError> {
        #[derive(Deserialize)]
        struct Doc {
            fingerprint_policy: Policy,
        }
        let doc: Doc = toml::from_str(src).map_err(|e| {
            let (line, column) = e
                .span()
                .map_or((1, 1), |s| tamga_profiles::line_col(src, s.start));
            PolicyError::Invalid {
                file: file.to_owned(),
                line,
                column,
                message: e.message().trim().to_owned(),
            }
        })?;
        let p = doc.fingerprint_policy;
        let check = |key: String, r: &FingerRule| -> Result<(), PolicyError> {
            if r.threshold > 100 {
                return Err(PolicyError::Value {
                    file: file.to_owned(),
                    key: format!("{key}.threshold"),
                    message: format!("{} is above 100; the quality score is 0-100", r.threshold),
                });
            }
            if !(1..=10).contains(&r.attempts) {
                return Err(PolicyError::Value {
                    file: file.to_owned(),
                    key: format!("{key}.attempts"),
                    message: format!("{} must be 1 to 10", r.attempts),
                });
            }
            Ok(())
        };
        check("fingerprint_policy".into(), &p.default)?;
        for pos in p.fingers.keys() {
            let r = &p.rule(*pos);
            let name = serde_json::to_value(pos)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            check(format!("fingerprint_policy.fingers.{name}"), r)?;
        }
        Ok(p)
    }
}

/// Where one finger stands.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum FingerState {
    /// Not yet decided; scores of the attempts so far.
    Pending { scores: Vec<u8> },
    /// Accepted: the best attempt's index and score; `below_threshold` when kept as the best of N.
    Captured {
        attempt: usize,
        score: u8,
        attempts: usize,
        below_threshold: bool,
    },
    /// Declared not capturable.
    Exception {
        reason: ExceptionReason,
        code: &'static str,
    },
}

/// What the operator should do after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "next", rename_all = "snake_case")]
pub enum Next {
    /// Accepted; go to the next finger.
    Accepted { score: u8 },
    /// Try again; `remaining` attempts left.
    Retry { remaining: u8 },
    /// All attempts used; the best is kept but below the threshold.
    KeptBest { score: u8 },
    /// All attempts used and the policy does not keep a low-quality image: declare an exception.
    DeclareException,
}

/// The ten fingers of one applicant.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TenFingers {
    pub fingers: BTreeMap<FingerPosition, FingerState>,
}

impl Default for TenFingers {
    fn default() -> Self {
        TenFingers {
            fingers: FingerPosition::ALL
                .iter()
                .map(|&p| (p, FingerState::Pending { scores: vec![] }))
                .collect(),
        }
    }
}

impl TenFingers {
    /// Records an attempt's quality score and says what to do next.
    pub fn record(&mut self, policy: &Policy, position: FingerPosition, score: u8) -> Next {
        let rule = policy.rule(position);
        let state = self
            .fingers
            .entry(position)
            .or_insert(FingerState::Pending { scores: vec![] });
        let mut scores = match state {
            FingerState::Pending { scores } => std::mem::take(scores),
            // A new attempt on a decided finger starts it over (the operator chose to retake it).
            _ => Vec::new(),
        };
        scores.push(score);
        let attempts = scores.len();
        if score >= rule.threshold {
            *state = FingerState::Captured {
                attempt: attempts - 1,
                score,
                attempts,
                below_threshold: false,
            };
            return Next::Accepted { score };
        }
        if attempts < usize::from(rule.attempts) {
            let remaining = rule.attempts - attempts as u8;
            *state = FingerState::Pending { scores };
            return Next::Retry { remaining };
        }
        if policy.keep_best_below_threshold {
            let (best_i, best) = scores
                .iter()
                .copied()
                .enumerate()
                .max_by_key(|&(i, s)| (s, std::cmp::Reverse(i)))
                .unwrap_or((0, 0));
            *state = FingerState::Captured {
                attempt: best_i,
                score: best,
                attempts,
                below_threshold: true,
            };
            Next::KeptBest { score: best }
        } else {
            *state = FingerState::Pending { scores };
            Next::DeclareException
        }
    }

    /// Declares that `position` cannot be captured.
    pub fn declare_exception(&mut self, position: FingerPosition, reason: ExceptionReason) {
        self.fingers.insert(
            position,
            FingerState::Exception {
                reason,
                code: reason.code(),
            },
        );
    }

    /// Positions without a decision yet.
    pub fn missing(&self) -> Vec<FingerPosition> {
        FingerPosition::ALL
            .iter()
            .copied()
            .filter(|p| matches!(self.fingers.get(p), None | Some(FingerState::Pending { .. })))
            .collect()
    }

    /// Complete: ten fingers or ten decisions.
    pub fn is_complete(&self) -> bool {
        self.missing().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use FingerPosition::*;

    #[test]
    fn accept_at_threshold_or_best_of_n() {
        let policy = Policy::default();
        let mut t = TenFingers::default();
        assert_eq!(t.record(&policy, RightThumb, 70), Next::Accepted { score: 70 });
        assert_eq!(t.record(&policy, RightIndex, 10), Next::Retry { remaining: 2 });
        assert_eq!(t.record(&policy, RightIndex, 30), Next::Retry { remaining: 1 });
        assert_eq!(t.record(&policy, RightIndex, 20), Next::KeptBest { score: 30 });
        assert_eq!(
            t.fingers[&RightIndex],
            FingerState::Captured {
                attempt: 1,
                score: 30,
                attempts: 3,
                below_threshold: true
            }
        );
    }

    #[test]
    fn strict_policy_requires_an_exception() {
        let policy = Policy {
            keep_best_below_threshold: false,
            ..Policy::default()
        };
        let mut t = TenFingers::default();
        for _ in 0..2 {
            t.record(&policy, LeftLittle, 5);
        }
        assert_eq!(t.record(&policy, LeftLittle, 5), Next::DeclareException);
        assert!(t.missing().contains(&LeftLittle));
        t.declare_exception(LeftLittle, ExceptionReason::UnableToCapture);
        assert!(!t.missing().contains(&LeftLittle));
    }

    #[test]
    fn complete_with_ten_fingers_or_ten_decisions() {
        let policy = Policy::default();
        let mut t = TenFingers::default();
        for p in FingerPosition::ALL.iter().take(8) {
            t.record(&policy, *p, 90);
        }
        assert_eq!(t.missing(), vec![LeftRing, LeftLittle]);
        assert!(!t.is_complete());
        t.declare_exception(LeftRing, ExceptionReason::Amputated);
        t.declare_exception(LeftLittle, ExceptionReason::Bandaged);
        assert!(t.is_complete());
        assert_eq!(ExceptionReason::Amputated.code(), "XX");
    }

    #[test]
    fn per_finger_overrides_from_config_with_located_errors() {
        let src = "[fingerprint_policy]\nthreshold = 45\nattempts = 4\n\n[fingerprint_policy.fingers.right-little]\nthreshold = 30\nattempts = 5\n";
        let p = Policy::from_toml("station.toml", src).unwrap();
        assert_eq!(
            p.rule(RightLittle),
            FingerRule {
                threshold: 30,
                attempts: 5
            }
        );
        assert_eq!(
            p.rule(LeftThumb),
            FingerRule {
                threshold: 45,
                attempts: 4
            }
        );
        let e = Policy::from_toml("station.toml", &src.replace("attempts = 5", "attempts = 0")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "station.toml: key `fingerprint_policy.fingers.right-little.attempts`: 0 must be 1 to 10"
        );
        let e = Policy::from_toml("station.toml", &src.replace("right-little", "right-pinky")).unwrap_err();
        assert!(e.to_string().starts_with("station.toml:5:"), "{e}");
    }
}
