//! The choices of every part a run is made of, from the tables their parsers read (`approxlab_engine::parts`, the
//! data sets' and samplers' forms): `approxlab parts`, the flags' help, the live page's lists and the README's table
//! all come from here, so none of them can drift from what the parsers accept.

use crate::samplers::SamplerSpec;
use approxlab_engine::parts::{self, Form, Part};

/// One row of the table: the flag (or what it is part of) and its choices.
pub struct Row {
    pub flag: &'static str,
    /// The forms and their words, in backticks where `code`.
    pub choices: String,
}

fn flag_of(kind: &str) -> &'static str {
    match kind {
        "encoding" => "`--encoding`",
        "network" => "`--network`",
        "activation" => "activations (in `--network`)",
        "head" => "`--head` (default: the data's)",
        "loss" => "`--loss` (default: the head's)",
        "optimizer" => "`--optimizer`",
        "schedule" => "`--schedule`",
        "precision" => "`--precision`",
        _ => "?",
    }
}

/// Every part with its choices, in the order of a run: data, model parts, sampler, training.
pub fn rows(code: bool) -> Vec<Row> {
    let data =
        approxlab_data::DATA_FORMS.iter().map(|(usage, about)| Form::new("", usage, &[], about)).collect::<Vec<_>>();
    let mut rows = vec![Row { flag: "`--data`", choices: parts::describe(&data, code) }];
    for kind in parts::all() {
        rows.push(Row { flag: flag_of(kind.kind), choices: parts::describe(kind.forms, code) });
        if kind.kind == "schedule" {
            rows.push(Row { flag: "`--sampler`", choices: parts::describe(SamplerSpec::FORMS, code) });
        }
    }
    rows
}

/// The README's table of choices (between its `<!-- parts -->` markers), as `approxlab parts --markdown` prints it.
pub fn markdown_table() -> String {
    let mut text = String::from("| part | choices |\n|---|---|\n");
    for row in rows(true) {
        text.push_str(&format!("| {} | {} |\n", row.flag, row.choices.replace('|', "\\|")));
    }
    text
}

/// `approxlab parts`: every part's choices, for a terminal.
pub fn plain_listing() -> String {
    rows(false).iter().map(|r| format!("{}\n    {}\n", r.flag.replace('`', ""), r.choices)).collect()
}

/// A flag's help: its choices.
pub fn help<P: Part>() -> String {
    parts::describe(P::FORMS, false)
}

/// The examples of every form of `P`, for the live page's lists.
pub fn examples<P: Part>() -> Vec<&'static str> {
    P::FORMS.iter().flat_map(|f| f.examples.iter().copied()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEGIN: &str =
        "<!-- parts: made by `approxlab parts --markdown`; APPROXLAB_BLESS=1 cargo test rewrites it -->\n";
    const END: &str = "<!-- /parts -->";

    #[test]
    fn the_readme_table_of_choices_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
        let readme = std::fs::read_to_string(&path).expect("README.md");
        let start = readme.find(BEGIN).expect("the README has the parts table's opening marker") + BEGIN.len();
        let end = start + readme[start..].find(END).expect("the README has the parts table's closing marker");
        let table = markdown_table();
        if std::env::var_os("APPROXLAB_BLESS").is_some() {
            std::fs::write(&path, format!("{}{table}{}", &readme[..start], &readme[end..])).unwrap();
            return;
        }
        assert_eq!(
            readme[start..end],
            table,
            "README.md's table of choices is stale: run APPROXLAB_BLESS=1 cargo test"
        );
    }

    #[test]
    fn every_row_lists_every_form() {
        for row in rows(true) {
            assert_ne!(row.flag, "?", "a kind of part without its flag in flag_of: {}", row.choices);
        }
        let table = markdown_table();
        for kind in parts::all() {
            for form in kind.forms {
                assert!(table.contains(&format!("`{}`", form.usage)), "{} {} is missing", kind.kind, form.usage);
            }
        }
        for form in SamplerSpec::FORMS {
            assert!(table.contains(form.usage));
            assert!(
                <SamplerSpec as approxlab_engine::parts::Part>::parse(form.examples[0]).is_ok(),
                "{}",
                form.examples[0]
            );
        }
        for (usage, _) in approxlab_data::DATA_FORMS {
            assert!(table.contains(&format!("`{}`", usage.replace('|', "\\|"))), "{usage}");
        }
    }
}
