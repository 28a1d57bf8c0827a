//! Which server a test cluster runs: LXD or Incus. Both speak the same REST API (Incus is a fork
//! of LXD 5.x) and are driven the same way; only binaries, environment variables and a few
//! command spellings differ. Everything that differs is here, so `cluster.rs` has one code path.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

/// The server a cluster runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ServerKind {
    /// Canonical's LXD (Debian 12: `lxd` 5.0.2).
    Lxd,
    /// Incus, the Linux Containers fork (Debian 12: `incus-base` 6.0.x from bookworm-backports).
    Incus,
}

/// Where distributions put the Incus daemon, which is not on `PATH`: Debian and Ubuntu's
/// `incus-base` (`/usr/libexec/incus/incusd`), Zabbly's packages (`/opt/incus/bin/incusd`).
const INCUSD_PATHS: &[&str] = &["/usr/libexec/incus/incusd", "/opt/incus/bin/incusd"];

impl ServerKind {
    pub const ALL: [ServerKind; 2] = [ServerKind::Lxd, ServerKind::Incus];

    /// `lxd` or `incus`: what `GET /1.0` reports as `environment.server`.
    pub fn name(self) -> &'static str {
        match self {
            ServerKind::Lxd => "lxd",
            ServerKind::Incus => "incus",
        }
    }

    /// `lxd` / `incus`, as written in `TESTBED_SERVER` or a test's name.
    pub fn parse(s: &str) -> Result<ServerKind> {
        match s.trim().to_ascii_lowercase().as_str() {
            "lxd" => Ok(ServerKind::Lxd),
            "incus" => Ok(ServerKind::Incus),
            other => bail!("unknown server kind {other:?}: expected `lxd` or `incus`"),
        }
    }

    /// The command-line client: `lxc` or `incus`.
    pub fn client(self) -> &'static str {
        match self {
            ServerKind::Lxd => "lxc",
            ServerKind::Incus => "incus",
        }
    }

    /// The environment variable naming a daemon's state directory (and its unix socket).
    pub fn dir_var(self) -> &'static str {
        match self {
            ServerKind::Lxd => "LXD_DIR",
            ServerKind::Incus => "INCUS_DIR",
        }
    }

    /// The environment variable naming the client's configuration directory.
    pub fn conf_var(self) -> &'static str {
        match self {
            ServerKind::Lxd => "LXD_CONF",
            ServerKind::Incus => "INCUS_CONF",
        }
    }

    /// The client's configuration directory under a `HOME`.
    pub fn conf_dir(self, home: &Path) -> PathBuf {
        match self {
            ServerKind::Lxd => home.join(".config/lxc"),
            ServerKind::Incus => home.join(".config/incus"),
        }
    }

    /// The daemon binary: `lxd` on `PATH`; `incusd` on `PATH` (a test may put a fake there) or
    /// where the packages install it.
    pub fn daemon(self) -> Option<PathBuf> {
        match self {
            ServerKind::Lxd => which("lxd"),
            ServerKind::Incus => {
                which("incusd").or_else(|| INCUSD_PATHS.iter().map(PathBuf::from).find(|p| p.is_file()))
            }
        }
    }

    /// The file name a running daemon has as `argv[0]`, to recognise our leftovers.
    pub fn daemon_name(self) -> &'static str {
        match self {
            ServerKind::Lxd => "lxd",
            ServerKind::Incus => "incusd",
        }
    }

    /// The program and leading arguments of the daemon's admin commands (`waitready`,
    /// `init --preseed`, `shutdown`): `lxd …` for LXD, `incus admin …` for Incus.
    pub fn admin(self) -> (&'static str, &'static [&'static str]) {
        match self {
            ServerKind::Lxd => ("lxd", &[]),
            ServerKind::Incus => ("incus", &["admin"]),
        }
    }

    /// The client arguments that trust a certificate file as an operator would:
    /// `lxc config trust add FILE --name N`, `incus config trust add-certificate FILE --name N`
    /// (Incus' `add` makes a join token instead).
    pub fn trust_add_args<'a>(self, file: &'a str, name: &'a str) -> Vec<&'a str> {
        let verb = match self {
            ServerKind::Lxd => "add",
            ServerKind::Incus => "add-certificate",
        };
        vec!["config", "trust", verb, file, "--name", name]
    }

    /// How to install it on Debian 12, for error messages.
    pub fn install_hint(self) -> &'static str {
        match self {
            ServerKind::Lxd => "apt-get install -y --no-install-recommends lxd lxd-client (or scripts/setup)",
            ServerKind::Incus => {
                "add the bookworm-backports suite, then apt-get install -y -t bookworm-backports \
                 --no-install-recommends incus-base incus-client (scripts/setup does both)"
            }
        }
    }

    /// Whether the tools this kind needs are installed; the error says how to install them.
    pub fn check_installed(self) -> Result<()> {
        if self.daemon().is_none() {
            bail!("the {} daemon ({}) is not installed; {}", self.name(), self.daemon_name(), self.install_hint());
        }
        let client = self.client();
        if which(client).is_none() {
            bail!("`{client}` is not on PATH; {}", self.install_hint());
        }
        Ok(())
    }
}

impl std::fmt::Display for ServerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

pub(crate) fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(tool)).find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back() {
        for kind in ServerKind::ALL {
            assert_eq!(ServerKind::parse(kind.name()).ok(), Some(kind));
        }
        assert!(ServerKind::parse("lxc").is_err());
    }

    #[test]
    fn each_kind_has_its_own_spelling() {
        assert_eq!(ServerKind::Lxd.trust_add_args("f", "n"), ["config", "trust", "add", "f", "--name", "n"]);
        assert_eq!(ServerKind::Incus.trust_add_args("f", "n")[2], "add-certificate");
        assert_eq!(ServerKind::Incus.admin(), ("incus", &["admin"][..]));
        assert_ne!(ServerKind::Lxd.dir_var(), ServerKind::Incus.dir_var());
    }
}
