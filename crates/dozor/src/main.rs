//! `dozor`: the one binary. This file is the command line only: it parses arguments and
//! hands over to the library: `server` (serve, demo, user add), `config` (check config), the
//! rules crate (check rules, test rules) or the audit crate (audit verify).

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use dozor::config;
use dozor::server::{self, Overrides};
use dozor_model::{Role, TenantId};

/// mimalloc rather than glibc's malloc: ingest allocates and frees many small strings per
/// record, where glibc spent a quarter of the CPU and returned little memory.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Dozor watches a business end to end: metrics, logs, events, alerts, audit.
#[derive(Parser)]
#[command(name = "dozor", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server: API, UI and engines.
    Serve(ServeArgs),
    /// Run the server with built-in generators of live demo data and a demo login.
    Demo(ServeArgs),
    /// Validate files without starting anything.
    #[command(subcommand)]
    Check(CheckCommand),
    /// Run unit tests.
    #[command(subcommand)]
    Test(TestCommand),
    /// Manage users in the state store.
    #[command(subcommand)]
    User(UserCommand),
    /// Inspect the audit chain.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Run the detection library over a public benchmark's files, writing what its scorer
    /// reads (`bench/detect.sh` scores them).
    #[command(subcommand)]
    Detect(DetectCommand),
    /// Print the version.
    Version,
}

/// Flags shared by `serve` and `demo`; each wins over the file and the environment.
#[derive(Args, Clone, Default)]
struct ServeArgs {
    /// Configuration file (see deploy/dozor.example.yml); without it, defaults and DOZOR_* variables.
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory (overrides data_dir).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Listen address (overrides server.listen), e.g. 127.0.0.1:9470.
    #[arg(long, value_name = "ADDR")]
    listen: Option<std::net::SocketAddr>,
}

#[derive(Subcommand)]
enum CheckCommand {
    /// Check a dozor.yml: syntax, unknown keys, types. Exits non-zero on the first error.
    Config {
        /// The file to check.
        file: PathBuf,
    },
    /// Check Prometheus rule files, as `promtool check rules` does. Reports every problem
    /// with file, line, group and rule; exits non-zero if there is one.
    Rules {
        /// The rule files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(Subcommand)]
enum TestCommand {
    /// Run rule unit tests in `promtool test rules`' format. Exits non-zero if one fails.
    Rules {
        /// The unit-test files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user. The password is read from standard input (one line) or a file.
    Add {
        #[command(flatten)]
        target: ServeArgs,
        /// Login name.
        #[arg(long)]
        name: String,
        /// admin, operator, viewer or ingest.
        #[arg(long, default_value = "viewer")]
        role: Role,
        /// Tenant the user belongs to.
        #[arg(long, default_value = TenantId::DEFAULT)]
        tenant: TenantId,
        /// Read the password from this file instead of standard input.
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum DetectCommand {
    /// Mine log templates from every `*.log` under DATA (Loghub-2k's `<Name>/<Name>_2k.log`)
    /// and write `OUT/<Name>.csv` (`line_no,cluster_id`, one row per line).
    Loghub {
        /// Directory of the log files.
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
        /// Directory for the predictions.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Score every `<category>/<file>.csv` (`timestamp,value`) under DATA, the Numenta
    /// Anomaly Benchmark's layout, one sample at a time, and write
    /// `OUT/<category>/<file>.csv` (`timestamp,value,anomaly_score,label`).
    Nab {
        /// Directory of the categories.
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
        /// Directory for the scores.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Verify the audit chain: hashes, order, links and signed checkpoints. Exits 1 and
    /// names the first bad record if the chain was tampered with.
    Verify {
        /// Data directory holding audit/.
        #[arg(long, value_name = "DIR")]
        data_dir: PathBuf,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

impl ServeArgs {
    fn overrides(&self) -> Overrides {
        Overrides {
            config: self.config.clone(),
            data_dir: self.data_dir.clone(),
            listen: self.listen,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => server::run(&args.overrides(), false),
        Command::Demo(args) => server::run(&args.overrides(), true),
        Command::Check(CheckCommand::Config { file }) => {
            let (_, warnings) = config::Config::load(Some(&file), std::env::vars())?;
            for w in warnings {
                eprintln!("warning: {w}");
            }
            println!("{}: ok", file.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Check(CheckCommand::Rules { files }) => {
            let mut ok = true;
            for f in &files {
                match dozor_rules::file::load_file(f) {
                    Ok(groups) => {
                        let rules: usize = groups.iter().map(|g| g.rules.len()).sum();
                        println!(
                            "{}: ok, {rules} rules in {} groups",
                            f.display(),
                            groups.len()
                        );
                    }
                    Err(errors) => {
                        ok = false;
                        for e in errors {
                            eprintln!("{e}");
                        }
                    }
                }
            }
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Test(TestCommand::Rules { files }) => {
            let ok = dozor_rules::unit::run_files(&files, &mut std::io::stdout().lock());
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::User(UserCommand::Add {
            target,
            name,
            role,
            tenant,
            password_file,
        }) => {
            let password = match password_file {
                Some(f) => config::read_secret_file(&f)?,
                None => {
                    let mut line = String::new();
                    std::io::stdin()
                        .read_to_string(&mut line)
                        .context("cannot read the password from standard input")?;
                    line.lines().next().unwrap_or("").to_owned()
                }
            };
            server::add_user(&target.overrides(), &name, role, &tenant, &password)?;
            println!("created user {name} ({role}) in tenant {tenant}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit(AuditCommand::Verify { data_dir, json }) => {
            let report = dozor_audit::verify(&data_dir).context("cannot verify the audit chain")?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else if let Some(p) = &report.problem {
                println!(
                    "audit chain BROKEN at line {} (record {}): {}",
                    p.line, p.seq, p.message
                );
            } else if report.first > 1 {
                println!(
                    "audit chain ok: records {} to {} (earlier ones pruned behind the signed \
                     checkpoint at {}), {} signed checkpoints",
                    report.first,
                    report.records,
                    report.first - 1,
                    report.checkpoints
                );
            } else {
                println!(
                    "audit chain ok: {} records, {} signed checkpoints",
                    report.records, report.checkpoints
                );
            }
            Ok(if report.problem.is_none() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Detect(DetectCommand::Loghub { data, out }) => {
            for m in dozor::detect::loghub(&data, &out)? {
                println!("{}: {} lines, {} clusters", m.name, m.lines, m.clusters);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Detect(DetectCommand::Nab { data, out }) => {
            for s in dozor::detect::nab(&data, &out)? {
                println!("{}: {} rows", s.name, s.rows);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Version => {
            println!("dozor {}", env!("CARGO_PKG_VERSION"));
            Ok(ExitCode::SUCCESS)
        }
    }
}
