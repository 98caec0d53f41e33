//! Command lines built from the very structs the started programs parse:
//! [`argv`] turns a value of a `clap::Args` type (the producer's `Args`,
//! the consumers' `ConsumerArgs`, this binary's subcommands) into the
//! arguments that make clap parse it back, reading each flag's name from
//! the type's own clap definition. A field without a flag is an error, so
//! the two cannot drift apart unnoticed.

use std::ffi::OsString;

use anyhow::{Context as _, bail};
use serde::Serialize;
use serde_json::Value;

/// The arguments that make `T`'s parser produce `value`: `--long=value` or
/// `-Svalue` per field (a list repeats its flag, a pair is `key=value`), a
/// flag alone for `true`, nothing for `false` or `None`, positionals last.
pub fn argv<T: clap::Args + Serialize>(value: &T) -> anyhow::Result<Vec<OsString>> {
    let cmd = T::augment_args(clap::Command::new("argv"));
    let Value::Object(mut fields) = serde_json::to_value(value).context("not serializable")? else {
        bail!("only a struct can become a command line");
    };
    let (mut flags, mut positionals) = (Vec::new(), Vec::new());
    for arg in cmd.get_arguments() {
        let Some(v) = fields.remove(arg.get_id().as_str()) else {
            continue;
        };
        let flag = match (arg.get_long(), arg.get_short()) {
            (Some(long), _) => Some(format!("--{long}=")),
            (None, Some(short)) => Some(format!("-{short}")),
            (None, None) => None,
        };
        let values = match v {
            Value::Null | Value::Bool(false) => Vec::new(),
            Value::Bool(true) if !arg.get_action().takes_values() => {
                flags.push(OsString::from(
                    flag.unwrap_or_default().trim_end_matches('='),
                ));
                continue;
            }
            Value::Array(items) => items.iter().map(text).collect(),
            other => vec![text(&other)],
        };
        for v in values {
            match &flag {
                Some(f) => flags.push(format!("{f}{v}").into()),
                None => positionals.push(v.into()),
            }
        }
    }
    if let Some(field) = fields.keys().next() {
        bail!("field {field:?} has no command-line flag");
    }
    flags.extend(positionals);
    Ok(flags)
}

/// A value as its command-line text; a pair is `key=value`.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(text).collect::<Vec<_>>().join("="),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[derive(Debug, Clone, PartialEq, clap::Parser, Serialize)]
    struct Cli {
        #[arg(long)]
        count: u64,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        raw: bool,
        #[arg(short = 'X', value_parser = common::parse_property)]
        properties: Vec<(String, String)>,
        dir: PathBuf,
    }

    #[test]
    fn a_value_survives_the_round_trip() {
        use clap::Parser;
        let cli = Cli {
            count: 3,
            name: None,
            raw: true,
            properties: vec![("a.b".into(), "x=y".into()), ("c".into(), "-1".into())],
            dir: "/tmp/a dir".into(),
        };
        let args = argv(&cli).unwrap();
        assert_eq!(
            args,
            ["--count=3", "--raw", "-Xa.b=x=y", "-Xc=-1", "/tmp/a dir"].map(OsString::from)
        );
        let back = Cli::try_parse_from(std::iter::once(OsString::from("cli")).chain(args));
        assert_eq!(back.unwrap(), cli);
    }

    #[test]
    fn a_field_without_a_flag_is_refused() {
        #[derive(clap::Args, Serialize)]
        struct Drifted {
            #[arg(long)]
            count: u64,
            #[arg(skip)]
            hidden: u64,
        }
        let e = argv(&Drifted {
            count: 1,
            hidden: 2,
        })
        .unwrap_err();
        assert!(e.to_string().contains("hidden"), "{e}");
    }
}
