//! Keeps `docs/guide/` true: every file and item it names exists, every linked chapter and
//! figure exists, every command is a real example or test with real flags, and the fast
//! commands are run and print the lines the guide quotes.
//!
//! Conventions the chapters follow: code is cited as `` `path` `` or `` `path::item` ``
//! (a path from the repository's root); commands sit in ```` ```sh ```` blocks, and the
//! ```` ```text ```` block right after one quotes lines of its output.

mod common;

use std::path::PathBuf;
use std::process::Command;

/// Examples quick enough to run in the test suite (two seconds at most each).
const FAST: [&str; 4] = ["aggregate_posterior", "amortization_gap", "kl_divergence", "linear_regression"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn chapters() -> Vec<(PathBuf, String)> {
    let dir = root().join("docs/guide");
    let mut out: Vec<(PathBuf, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p, text)
        })
        .collect();
    out.sort();
    assert!(out.len() >= 9, "the guide has an index and its chapters");
    out
}

/// The spans between backticks, outside fenced blocks.
fn code_spans(text: &str) -> Vec<String> {
    let mut spans = Vec::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        let parts: Vec<&str> = line.split('`').collect();
        spans.extend(parts.iter().skip(1).step_by(2).map(|s| s.to_string()));
    }
    spans
}

/// Fenced blocks as (language, lines).
fn blocks(text: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let mut current: Option<(String, Vec<String>)> = None;
    for line in text.lines() {
        if let Some(lang) = line.strip_prefix("```") {
            match current.take() {
                Some(block) => out.push(block),
                None => current = Some((lang.trim().to_string(), Vec::new())),
            }
        } else if let Some((_, lines)) = current.as_mut() {
            lines.push(line.to_string());
        }
    }
    out
}

/// Whether `file` defines `item` (a function, type, constant or module of that name).
fn defines(file: &str, item: &str) -> bool {
    ["fn ", "struct ", "enum ", "const ", "trait ", "type ", "mod "].iter().any(|kw| {
        file.match_indices(&format!("{kw}{item}")).any(|(i, m)| {
            let next = file[i + m.len()..].chars().next();
            !next.is_some_and(|c| c.is_alphanumeric() || c == '_')
        })
    })
}

#[test]
fn every_cited_file_and_item_exists() {
    let mut cited = 0;
    for (chapter, text) in chapters() {
        for span in code_spans(&text) {
            let looks_like_path = ["crates/", "tests/", "examples/", "benches/", "bench/", "docs/"]
                .iter()
                .any(|p| span.starts_with(p))
                && !span.contains(' ');
            if !looks_like_path {
                continue;
            }
            let (path, item) = match span.split_once("::") {
                Some((p, i)) => (p, Some(i)),
                None => (span.as_str(), None),
            };
            let file = root().join(path);
            assert!(file.exists(), "{}: `{path}` does not exist", chapter.display());
            if let Some(item) = item {
                let source = std::fs::read_to_string(&file).unwrap();
                assert!(defines(&source, item), "{}: `{path}` defines no `{item}`", chapter.display());
            }
            cited += 1;
        }
    }
    assert!(cited > 40, "only {cited} citations found: is the convention still followed?");
}

#[test]
fn every_link_and_figure_exists() {
    for (chapter, text) in chapters() {
        let dir = chapter.parent().unwrap();
        for part in text.split("](").skip(1) {
            let target = part.split(')').next().unwrap();
            if target.starts_with("http") {
                continue;
            }
            assert!(dir.join(target).exists(), "{}: link to {target} is broken", chapter.display());
            if target.ends_with(".png") {
                let bytes = std::fs::read(dir.join(target)).unwrap();
                assert!(bytes.starts_with(b"\x89PNG") && bytes.len() < 200_000, "{target}: a small PNG");
            }
        }
    }
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    assert!(readme.contains("docs/guide/README.md"), "the README links the guide");
}

/// The example a `cargo run --release --example NAME -- ARGS` line runs, and its flags.
fn example_command(line: &str) -> Option<(String, Vec<String>)> {
    let rest = line.trim().strip_prefix("cargo run --release --example ")?;
    let mut words = rest.split_whitespace();
    let name = words.next()?.to_string();
    let args: Vec<String> = words.skip_while(|w| *w == "--").map(str::to_string).collect();
    Some((name, args))
}

#[test]
fn every_command_names_a_real_example_or_test_and_its_flags() {
    let mut commands = 0;
    for (chapter, text) in chapters() {
        for (lang, lines) in blocks(&text) {
            if lang != "sh" {
                continue;
            }
            for line in lines.iter().filter(|l| !l.trim().is_empty()) {
                commands += 1;
                if let Some((name, args)) = example_command(line) {
                    assert!(
                        root().join("examples").join(format!("{name}.rs")).is_file(),
                        "{}: no example {name}",
                        chapter.display()
                    );
                    // The flags as the example's own help lists them (many are the
                    // configuration's, declared in the library).
                    let help = Command::new(common::example(&name)).arg("--help").output().unwrap();
                    let help = String::from_utf8_lossy(&help.stdout);
                    for flag in args.iter().filter(|a| a.starts_with("--")) {
                        let listed = help.split(|c: char| c.is_whitespace() || c == ',').any(|w| w == flag);
                        assert!(listed, "{}: {name} has no flag {flag}", chapter.display());
                    }
                } else if let Some(rest) = line.trim().strip_prefix("cargo test --release --test ") {
                    let mut words = rest.split_whitespace();
                    let name = words.next().unwrap();
                    let source = std::fs::read_to_string(root().join("tests").join(format!("{name}.rs")))
                        .unwrap_or_else(|_| panic!("{}: no test file {name}", chapter.display()));
                    if let Some(filter) = words.rfind(|w| !w.starts_with("--")) {
                        assert!(
                            source.contains(&format!("fn {filter}")),
                            "{}: no test {filter}",
                            chapter.display()
                        );
                    }
                } else {
                    panic!("{}: a command the guide check does not know: {line}", chapter.display());
                }
            }
        }
    }
    assert!(commands >= 10, "only {commands} commands found");
}

/// Runs `name` with `args` from the repository's root and returns its standard output.
fn run(name: &str, args: &[String]) -> String {
    let out = Command::new(common::example(name)).args(args).current_dir(root()).output().unwrap();
    assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_fast_commands_print_what_the_guide_quotes() {
    let mut checked = 0;
    for (chapter, text) in chapters() {
        let all = blocks(&text);
        for (i, (lang, lines)) in all.iter().enumerate() {
            let Some((name, args)) = lines.first().and_then(|l| example_command(l)) else { continue };
            if lang != "sh" || !FAST.contains(&name.as_str()) {
                continue;
            }
            let Some((next_lang, quoted)) = all.get(i + 1) else { continue };
            // A command that reads a checkpoint an earlier, slow command writes under runs/
            // is checked for its flags only.
            let reads_a_run = args.windows(2).any(|w| w[0] == "--checkpoint" && w[1].starts_with("runs/"));
            if next_lang != "text" || reads_a_run {
                continue;
            }
            let printed = run(&name, &args);
            for q in quoted.iter().map(|l| l.trim()).filter(|l| !l.is_empty()) {
                assert!(
                    printed.lines().any(|l| l.trim() == q),
                    "{}: {name} no longer prints `{q}`; it printed:\n{printed}",
                    chapter.display()
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 5, "only {checked} quoted lines checked");
}

/// The slower examples the guide cites, run with small limits: each finishes and writes its
/// picture.
#[test]
fn the_slower_examples_run_with_small_limits() {
    let dir = std::env::temp_dir().join(format!("vae-guide-{}", std::process::id()));
    let out = |name: &str| dir.join(name).to_str().unwrap().to_string();
    let runs: [(&str, Vec<String>, &str); 3] = [
        (
            "mixture_em",
            vec![
                "--k".into(),
                "3".into(),
                "--iters".into(),
                "2".into(),
                "--train-limit".into(),
                "300".into(),
            ],
            "means.png",
        ),
        (
            "gradient_variance",
            vec!["--repeats".into(), "3".into(), "--max-samples".into(), "2".into()],
            "gradient_variance.png",
        ),
        (
            "mnist_gan",
            vec!["--epochs".into(), "1".into(), "--train-limit".into(), "200".into()],
            "samples.png",
        ),
    ];
    for (name, mut args, picture) in runs {
        args.extend(["--out".to_string(), out(name)]);
        let printed = run(name, &args);
        assert!(!printed.is_empty(), "{name} printed nothing");
        let png = std::fs::read(dir.join(name).join(picture)).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "{name}: {picture}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_guide_lists_every_chapter() {
    let index = std::fs::read_to_string(root().join("docs/guide/README.md")).unwrap();
    for (chapter, _) in chapters() {
        let name = chapter.file_name().unwrap().to_str().unwrap();
        if name != "README.md" {
            assert!(index.contains(&format!("({name})")), "the index does not list {name}");
        }
    }
}
