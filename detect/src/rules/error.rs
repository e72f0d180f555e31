use thiserror::Error;

/// Why one rule was rejected. Reasons never quote payload bytes at length.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RuleError {
    #[error("rule is {len} bytes, over the {limit}-byte limit")]
    TooLong { len: usize, limit: usize },
    #[error("no option list: expected `(` after the header")]
    MissingOptions,
    #[error("option list not closed with `)`")]
    UnclosedOptions,
    #[error("option not terminated with `;`: {0}")]
    UnterminatedOption(String),
    #[error("empty option keyword")]
    EmptyKeyword,
    #[error("more than {limit} options")]
    TooManyOptions { limit: usize },
    #[error("unbalanced quotes")]
    UnbalancedQuotes,
    #[error("unbalanced brackets")]
    UnbalancedBrackets,
    #[error("header has {0} fields, expected 7 (action proto src sport dir dst dport)")]
    HeaderFields(usize),
    #[error("unknown action `{0}`")]
    UnknownAction(String),
    #[error("unknown protocol `{0}`")]
    UnknownProtocol(String),
    #[error("bad direction `{0}` (expected -> or <>)")]
    BadDirection(String),
    #[error("bad address `{0}`")]
    BadAddress(String),
    #[error("bad port `{0}`")]
    BadPort(String),
    #[error("address or port expression nested deeper than {limit}")]
    ExpressionTooDeep { limit: usize },
    #[error("address or port expression has more than {limit} items")]
    ExpressionTooLarge { limit: usize },
    #[error("unknown variable ${0}")]
    UnknownVar(String),
    #[error("variable ${0} used as the wrong kind (address vs port)")]
    WrongVarKind(String),
    #[error("variable cycle: {0}")]
    VarCycle(String),
    #[error("variable ${name} expands beyond {limit} bytes")]
    VarTooLarge { name: String, limit: usize },
    #[error("unknown keyword `{0}`")]
    UnknownKeyword(String),
    #[error("{keyword}: {reason}")]
    BadValue { keyword: String, reason: String },
    #[error("{keyword}: needs a preceding content")]
    NoPrecedingContent { keyword: String },
    #[error("pcre: pattern does not compile: {0}")]
    BadPcre(String),
    #[error("no sid")]
    MissingSid,
}

impl RuleError {
    pub(crate) fn bad(keyword: &str, reason: impl Into<String>) -> RuleError {
        RuleError::BadValue {
            keyword: keyword.to_string(),
            reason: reason.into(),
        }
    }

    /// The keyword the rejection is attributed to in per-keyword counts: the option that
    /// failed, or `header` / `syntax` / `sid` for failures outside a single option.
    pub fn keyword(&self) -> &str {
        match self {
            RuleError::BadValue { keyword, .. } | RuleError::NoPrecedingContent { keyword } => {
                keyword
            }
            RuleError::UnknownKeyword(k) => k,
            RuleError::BadPcre(_) => "pcre",
            RuleError::MissingSid => "sid",
            RuleError::HeaderFields(_)
            | RuleError::UnknownAction(_)
            | RuleError::UnknownProtocol(_)
            | RuleError::BadDirection(_)
            | RuleError::BadAddress(_)
            | RuleError::BadPort(_)
            | RuleError::ExpressionTooDeep { .. }
            | RuleError::ExpressionTooLarge { .. }
            | RuleError::UnknownVar(_)
            | RuleError::WrongVarKind(_)
            | RuleError::VarCycle(_)
            | RuleError::VarTooLarge { .. } => "header",
            RuleError::TooLong { .. }
            | RuleError::MissingOptions
            | RuleError::UnclosedOptions
            | RuleError::UnterminatedOption(_)
            | RuleError::EmptyKeyword
            | RuleError::TooManyOptions { .. }
            | RuleError::UnbalancedQuotes
            | RuleError::UnbalancedBrackets => "syntax",
        }
    }
}
