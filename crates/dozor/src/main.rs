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
    /// Simulated devices and services that feed Dozor through its public paths.
    #[command(subcommand)]
    Sim(SimCommand),
    /// Print the version.
    Version,
}

#[derive(Subcommand)]
enum SimCommand {
    /// Write a simulated fleet of cash registers' driver log (JSON lines, KKT.md §3.4) with
    /// injected faults: the history at once, then (with --follow) each minute as it passes.
    Kkt {
        #[command(flatten)]
        fleet: FleetArgs,
        /// Where to append the lines; `-` for standard output.
        #[arg(long, short = 'o', default_value = "-")]
        output: PathBuf,
        /// Keep writing each minute as it passes.
        #[arg(long)]
        follow: bool,
        /// Print the alerts the shipped rules must raise (alert and register, one per line)
        /// to standard error.
        #[arg(long)]
        truth: bool,
    },
    /// Send a simulated ticket marketplace's week (ordinary buyers, injected scalpers,
    /// bots and other abusers), moved to end now, to a Dozor's analytics routes, and its
    /// tickets' chain events (mints, transfers, a congested drop at the end) to its
    /// events route.
    Marketplace {
        /// The Dozor to feed.
        #[arg(long, default_value = "http://127.0.0.1:9470")]
        url: String,
        /// File holding an API token with the ingest scope.
        #[arg(long, value_name = "FILE")]
        token_file: PathBuf,
        /// Ordinary accounts.
        #[arg(long, default_value_t = 200)]
        users: usize,
        /// Seed of every draw.
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Print the injected patterns and subjects, and the chain alert the drop raises
        /// (the ground truth), to standard error.
        #[arg(long)]
        truth: bool,
    },
    /// Serve an OFD-like API (OFD.ru, Taxcom and neutral dialects) over the same simulated
    /// fleet.
    Ofd {
        #[command(flatten)]
        fleet: FleetArgs,
        /// Listen address.
        #[arg(long, default_value = "127.0.0.1:9480")]
        listen: std::net::SocketAddr,
        /// Login of the OFD.ru and Taxcom dialects (and basic auth of the neutral one).
        #[arg(long, default_value = "dozor")]
        login: String,
        /// File holding the password.
        #[arg(long, value_name = "FILE")]
        password_file: PathBuf,
        /// File holding the neutral dialect's bearer token.
        #[arg(long, value_name = "FILE")]
        token_file: Option<PathBuf>,
        /// Taxcom's Integrator-ID.
        #[arg(long, default_value = "dozor-sim")]
        integrator_id: String,
        /// The organisation's INN (OFD.ru's path).
        #[arg(long, default_value = "7700000000")]
        inn: String,
    },
}

/// The simulated fleet: the same flags give the same fleet in `sim kkt` and `sim ofd`.
#[derive(Args)]
struct FleetArgs {
    /// Registers in the fleet.
    #[arg(long, default_value_t = 50)]
    registers: usize,
    /// Seed of every draw.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// History written at once before the end (`2h`, `30d`).
    #[arg(long, default_value = "1h")]
    history: String,
    /// End of the history, the moment faults are measured against (RFC 3339); default now.
    #[arg(long)]
    end: Option<String>,
    /// Faults as INDEX=SCENARIO[:ARG] (`1=ofd_outage:26`, `2=forgotten_shift:23.5`),
    /// repeatable; `none` for a healthy fleet; default: one of each among the first
    /// registers.
    #[arg(long = "fault")]
    faults: Vec<String>,
    /// Receipts per register per open hour.
    #[arg(long, default_value_t = 20.0)]
    receipts_per_hour: f64,
}

impl FleetArgs {
    fn options(&self) -> anyhow::Result<dozor_kkt::sim::SimOptions> {
        dozor::kkt::sim_options(
            self.registers,
            self.seed,
            &self.history,
            self.end.as_deref(),
            &self.faults,
            self.receipts_per_hour,
        )
    }
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
        Command::Sim(SimCommand::Kkt {
            fleet,
            output,
            follow,
            truth,
        }) => {
            let options = fleet.options()?;
            dozor::kkt::run_sim_cli(options, &output, follow, truth)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Sim(SimCommand::Ofd {
            fleet,
            listen,
            login,
            password_file,
            token_file,
            integrator_id,
            inn,
        }) => {
            let config = dozor_kkt::sim_ofd::OfdSimConfig {
                sim: fleet.options()?,
                login,
                password: config::read_secret_file(&password_file)?,
                token: token_file
                    .map(|f| config::read_secret_file(&f))
                    .transpose()?
                    .unwrap_or_default(),
                integrator_id,
                inn,
            };
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind(listen)
                    .await
                    .with_context(|| format!("cannot listen on {listen}"))?;
                println!(
                    "simulated OFD listening on http://{}",
                    listener.local_addr()?
                );
                dozor_kkt::sim_ofd::serve(listener, config).await?;
                anyhow::Ok(())
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Sim(SimCommand::Marketplace {
            url,
            token_file,
            users,
            seed,
            truth,
        }) => {
            anyhow::ensure!((1..=100_000).contains(&users), "--users: from 1 to 100000");
            let token = config::read_secret_file(&token_file)?;
            let now = dozor_model::time::now_ms();
            let (events, labels) = dozor::marketplace::simulated(seed, users, now);
            let chain = dozor::marketplace::chain_events(seed, &events, now);
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let fed = runtime
                .block_on(dozor::marketplace::feed(&url, &token, &events, &chain))
                .map_err(anyhow::Error::msg)?;
            println!(
                "sent {} sales, {} requests and {} chain events; findings by pattern: {:?}",
                fed.sales, fed.requests, fed.chain, fed.findings
            );
            if truth {
                for (pattern, subject) in &labels {
                    eprintln!("{} {subject}", pattern.name());
                }
                let (alert, operation) = dozor::marketplace::CHAIN_FAULT;
                eprintln!("{alert} {operation}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Version => {
            println!("dozor {}", env!("CARGO_PKG_VERSION"));
            Ok(ExitCode::SUCCESS)
        }
    }
}
