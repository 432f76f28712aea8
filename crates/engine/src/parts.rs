//! One source for the command-line forms of every model part.
//!
//! Each kind of part (encoding, network, activation, head, loss, optimizer, schedule, precision) implements [`Part`]: a table
//! of [`Form`]s, one per choice, and a constructor from a form and its arguments. The parser, the lists in error
//! messages, the CLI's help, the live page's choices and the README's table (`approxlab parts --markdown`) are all
//! read from those tables, so a new choice is one line in its table and one arm in its `from_form`.

use crate::error::{EngineError, Result};

/// One choice of a part as it is written on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Form {
    /// The word the form starts with: `fourier` in `fourier:64`.
    pub name: &'static str,
    /// Other words it answers to (`-` and `_` are interchangeable in all of them).
    pub aliases: &'static [&'static str],
    /// The form with its arguments in capitals, optional ones in brackets: `fourier:N`.
    pub usage: &'static str,
    /// Forms that parse, typical first: the live page offers them.
    pub examples: &'static [&'static str],
    /// What it is, in a few words (may be empty).
    pub about: &'static str,
}

impl Form {
    /// A form without aliases.
    pub const fn new(
        name: &'static str,
        usage: &'static str,
        examples: &'static [&'static str],
        about: &'static str,
    ) -> Form {
        Form { name, aliases: &[], usage, examples, about }
    }

    pub const fn aliases(self, aliases: &'static [&'static str]) -> Form {
        Form { aliases, ..self }
    }

    /// The form as the user wrote it, `name:arg:arg`, for messages about its arguments.
    pub fn written(&self, args: &[&str]) -> String {
        std::iter::once(self.name).chain(args.iter().copied()).collect::<Vec<_>>().join(":")
    }

    fn answers_to(&self, word: &str) -> bool {
        let word = normalise(word);
        normalise(self.name) == word || self.aliases.iter().any(|a| normalise(a) == word)
    }
}

fn normalise(word: &str) -> String {
    word.trim().to_ascii_lowercase().replace('-', "_")
}

/// A kind of model part with a command-line form.
pub trait Part: Sized {
    /// The kind's name in messages: `encoding`.
    const KIND: &'static str;
    /// Every choice, in the order the help and the README list them.
    const FORMS: &'static [Form];
    /// The part of `form` with the arguments after its name (`["64"]` for `fourier:64`).
    fn from_form(form: &Form, args: &[&str]) -> Result<Self>;
    /// Parses the CLI form `name[:arg[:arg...]]`.
    fn parse(spec: &str) -> Result<Self> {
        let mut pieces = spec.split(':').map(str::trim);
        let name = pieces.next().unwrap_or("");
        let args: Vec<&str> = pieces.collect();
        Self::from_form(find::<Self>(name)?, &args)
    }
}

/// The form of `P` that `name` names, or an error listing them all.
pub fn find<P: Part>(name: &str) -> Result<&'static Form> {
    P::FORMS.iter().find(|f| f.answers_to(name)).ok_or_else(|| {
        EngineError::config(
            P::KIND,
            format!("unknown {} '{}', expected one of: {}", P::KIND, name.trim(), usages::<P>()),
        )
    })
}

/// `usage, usage or usage` of every form of `P`.
pub fn usages<P: Part>() -> String {
    match P::FORMS {
        [] => String::new(),
        [only] => only.usage.to_string(),
        [rest @ .., last] => {
            format!("{} or {}", rest.iter().map(|f| f.usage).collect::<Vec<_>>().join(", "), last.usage)
        }
    }
}

/// Parses `spec` as given to a flag: the error names the flag once (`--loss: unknown loss 'x', ...`), not the flag
/// and then the kind again.
pub fn parse_flag<P: Part>(flag: &str, spec: &str) -> std::result::Result<P, String> {
    P::parse(spec).map_err(|e| format!("{flag}: {}", without_kind::<P>(e)))
}

/// The error's text without its field where the field is only the kind's name, which the caller names already.
pub fn without_kind<P: Part>(e: EngineError) -> String {
    match e {
        EngineError::Config { field, message } if field == P::KIND => message,
        other => other.to_string(),
    }
}

/// The error of a form given arguments it does not take.
pub fn no_args<P: Part>(form: &Form, args: &[&str]) -> Result<()> {
    match args {
        [] => Ok(()),
        _ => Err(EngineError::config(
            format!("{} {}", P::KIND, form.name),
            format!("takes no arguments, got '{}'", args.join(":")),
        )),
    }
}

/// The error of a form whose `from_form` has no arm: a table and its constructor disagree (a bug, caught by the
/// registry's tests, which parse every example).
pub fn unlisted<P: Part>(form: &Form) -> EngineError {
    EngineError::config(P::KIND, format!("'{}' is listed but not built", form.name))
}

/// Panics unless every form of `P` has a variant in `tested`: a test over a hand-written list of parts (a gradient
/// check, say) calls it so that a new form cannot be left out.
#[cfg(test)]
pub(crate) fn assert_every_form_in<P: Part + std::fmt::Debug>(tested: &[P]) {
    for form in P::FORMS {
        let example = P::parse(form.examples[0]).unwrap_or_else(|e| panic!("{} '{}': {e}", P::KIND, form.name));
        let kind = std::mem::discriminant(&example);
        assert!(
            tested.iter().any(|t| std::mem::discriminant(t) == kind),
            "{} '{}' is missing from the test's list {tested:?}",
            P::KIND,
            form.name
        );
    }
}

/// The forms of one kind, as the help, the live page and the README's table use them.
#[derive(Clone, Debug)]
pub struct KindForms {
    pub kind: &'static str,
    pub forms: &'static [Form],
}

fn kind<P: Part>() -> KindForms {
    KindForms { kind: P::KIND, forms: P::FORMS }
}

/// Every kind of model part, in the order of the model (input to loss) and then training.
pub fn all() -> Vec<KindForms> {
    vec![
        kind::<crate::encoding::EncodingConfig>(),
        kind::<crate::network::NetworkConfig>(),
        kind::<crate::activation::Activation>(),
        kind::<crate::head::Head>(),
        kind::<crate::loss::Loss>(),
        kind::<crate::optimizer::OptimizerConfig>(),
        kind::<crate::schedule::Schedule>(),
        kind::<crate::precision::PrecisionSetting>(),
    ]
}

/// `usage (about), usage, ...` for a help text or a table cell; `code` puts each usage in backticks.
pub fn describe(forms: &[Form], code: bool) -> String {
    forms
        .iter()
        .map(|f| {
            let usage = if code { format!("`{}`", f.usage) } else { f.usage.to_string() };
            if f.about.is_empty() {
                usage
            } else {
                format!("{usage} ({})", f.about)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_examples<P: Part>() {
        assert!(!P::FORMS.is_empty(), "{} has no forms", P::KIND);
        for form in P::FORMS {
            assert!(!form.examples.is_empty(), "{} {}: no example", P::KIND, form.name);
            assert!(form.usage.starts_with(form.name), "{} {}: usage '{}'", P::KIND, form.name, form.usage);
            for example in form.examples {
                if let Err(e) = P::parse(example) {
                    panic!("{} example '{example}': {e}", P::KIND);
                }
            }
        }
        let err = P::parse("no-such-part").err().expect("an unknown name is refused").to_string();
        assert!(err.contains(&format!("unknown {} 'no-such-part'", P::KIND)), "{err}");
        for form in P::FORMS {
            assert!(err.contains(form.usage), "{err} lacks {}", form.usage);
        }
    }

    #[test]
    fn every_example_of_every_part_parses_and_every_form_is_in_the_error() {
        check_examples::<crate::encoding::EncodingConfig>();
        check_examples::<crate::network::NetworkConfig>();
        check_examples::<crate::activation::Activation>();
        check_examples::<crate::head::Head>();
        check_examples::<crate::loss::Loss>();
        check_examples::<crate::optimizer::OptimizerConfig>();
        check_examples::<crate::schedule::Schedule>();
        check_examples::<crate::precision::PrecisionSetting>();
        assert_eq!(all().len(), 8);
    }

    #[test]
    fn a_flag_error_names_the_flag_once_and_lists_the_forms() {
        let err = parse_flag::<crate::loss::Loss>("--loss", "l3").unwrap_err();
        assert_eq!(err, "--loss: unknown loss 'l3', expected one of: mse, l1, huber[:DELTA] or cross_entropy");
        let err = parse_flag::<crate::loss::Loss>("--loss", "huber:x").unwrap_err();
        assert!(err.starts_with("--loss: ") && err.contains("huber"), "{err}");
    }

    #[test]
    fn names_answer_with_either_dash_or_underscore_and_any_case() {
        use crate::encoding::EncodingConfig;
        assert_eq!(
            EncodingConfig::parse("fourier_series:4").unwrap(),
            EncodingConfig::parse("fourier-series:4").unwrap()
        );
        assert_eq!(crate::loss::Loss::parse("Cross-Entropy").unwrap(), crate::loss::Loss::CrossEntropy);
        assert_eq!(crate::head::Head::parse("identity").unwrap(), crate::head::Head::Linear);
    }

    #[test]
    fn a_form_without_arguments_refuses_them() {
        let err = crate::head::Head::parse("sigmoid:2").unwrap_err().to_string();
        assert!(err.contains("head sigmoid") && err.contains("takes no arguments"), "{err}");
    }
}
