//! Volume and hostile input from the issue "volume breaks the charm": what a requirer can put
//! in a databag within Juju's 16 MiB, and what an operator can paste into the config, must
//! neither fail a hook nor come back out of the charm.
//!
//! Every scenario ends with the same checks: every hook of every unit exited 0 (a hook tool
//! refused with E2BIG is named as such), and the shared `World::check`. Their names share
//! `_volume_`: `cargo test --test e2e -- _volume_` runs them alone.

use crate::bed::{Bed, I0, INTEGRATOR, World};
use anyhow::{Context, Result, bail, ensure};
use jujusim::{CopyMode, RelationId, Sim};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;
use testbed::certs::{self, Pem};

pub fn all() -> Vec<(&'static str, crate::Scenario)> {
    vec![
        ("v1_volume_ten_thousand_invalid_entries_from_one_unit_do_not_wedge_the_others", v1_flood),
        ("v2_volume_sixteen_mib_of_padding_and_copies_publish_only_the_distinct_certificates", v2_padding),
        ("v3_volume_units_sending_a_mib_each_are_all_trusted_and_published_small", v3_many_units),
        ("v4_volume_an_openssl_self_signed_ca_true_client_certificate_is_trusted_by_lxd", v4_openssl_ca_true),
        ("v5_volume_a_private_key_pasted_into_config_blocks_naming_the_option_and_is_never_echoed", v5_pasted_key),
    ]
}

/// Linux refuses a single argv string of this many bytes or more (`MAX_ARG_STRLEN`, NUL
/// included) with E2BIG, so no hook tool can be handed one.
const MAX_ARG_STRLEN: usize = 128 * 1024;
const MIB: usize = 1 << 20;
/// Juju's own keys in every unit databag; what the charm publishes is everything else.
const JUJU_KEYS: [&str; 3] = ["private-address", "ingress-address", "egress-subnets"];

// ---------------------------------------------------------------------------------------------
// Helpers

/// Every hook so far exited 0; else the failures with their output, and a hook that died of an
/// oversized hook-tool argument named as that.
fn hooks_ok(w: &World, after: &str) -> Result<()> {
    let failed = w.sim.failed_hooks()?;
    if failed.is_empty() {
        return Ok(());
    }
    let lines: Vec<String> = failed
        .iter()
        .map(|h| {
            let out = h.stderr.trim();
            let e2big = out.contains("Argument list too long") || out.contains("os error 7");
            format!(
                "{} {} exit {}{}{}: {:.400}",
                h.unit,
                h.hook,
                h.exit_code,
                h.error.as_deref().map(|e| format!(" ({e})")).unwrap_or_default(),
                if e2big { " [E2BIG: a hook tool argument over 128 KiB]" } else { "" },
                out
            )
        })
        .collect();
    bail!(
        "{} hook(s) failed {after}; first ones:\n{}",
        lines.len(),
        lines.iter().take(5).cloned().collect::<Vec<_>>().join("\n")
    )
}

/// No hook-tool argument the integrator passed reached the kernel's limit. A call the kernel
/// refused never ran (so it is not in the records) and its hook failed: `hooks_ok` names that.
/// This catches what did run, and reports the largest argument.
fn tool_args_fit(w: &World) -> Result<usize> {
    let mut largest = 0;
    for call in w.sim.tool_calls()?.iter().filter(|c| c.unit.starts_with(INTEGRATOR)) {
        for arg in &call.args {
            ensure!(
                arg.len() < MAX_ARG_STRLEN,
                "{} passed {} an argument of {} bytes in {}",
                call.unit,
                call.tool,
                arg.len(),
                call.hook
            );
            largest = largest.max(arg.len());
        }
    }
    Ok(largest)
}

/// What every scenario here ends with: every hook exited 0, no hook-tool argument reached the
/// kernel's limit, and `World::check` with `secrets` too. Returns the largest argument.
fn finish(w: &World, secrets: &[&str]) -> Result<usize> {
    hooks_ok(w, "by the end")?;
    let largest = tool_args_fit(w)?;
    w.check_hiding(secrets)?;
    Ok(largest)
}

/// Bytes the integrator publishes on `rel`: its units' databags (without Juju's address keys)
/// and its application databag.
fn published_bytes(w: &World, rel: RelationId) -> Result<usize> {
    let mut total = 0;
    for u in w.sim.units(INTEGRATOR)? {
        total += w
            .sim
            .relation_data(rel, &u)?
            .iter()
            .filter(|(k, _)| !JUJU_KEYS.contains(&k.as_str()))
            .map(|(k, v)| k.len() + v.len())
            .sum::<usize>();
    }
    total += w.sim.relation_app_data(rel, INTEGRATOR)?.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
    Ok(total)
}

/// Fingerprints of what the integrator's unit says is registered, one per entry (so a
/// certificate listed twice shows as a short set beside a longer list).
fn registered_fps(w: &World, rel: RelationId) -> Result<(usize, BTreeSet<String>)> {
    let list = w.registered(rel, I0)?;
    let fps = list.iter().map(|p| certs::fingerprint_pem(p)).collect::<Result<BTreeSet<_>>>()?;
    Ok((list.len(), fps))
}

/// Wall times of the integrator's hooks: (count, slowest ms, total ms).
fn hook_times(w: &World) -> Result<(usize, f64, f64)> {
    let hooks: Vec<f64> =
        w.sim.hooks()?.iter().filter(|h| h.unit.starts_with(INTEGRATOR) && h.ran).map(|h| h.duration_ms).collect();
    Ok((hooks.len(), hooks.iter().copied().fold(0.0, f64::max), hooks.iter().sum()))
}

/// The volume scenarios deploy the packed artifact when `make test` names one in
/// `LXD_INTEGRATOR_CHARM` (so their times and peak RSS are the shipped binary's), else the
/// charm the test bed assembled from the test build.
fn deploy_artifact(w: &mut World) -> Result<()> {
    let Some(charm) = std::env::var_os("LXD_INTEGRATOR_CHARM").filter(|p| !p.is_empty()) else {
        return Ok(());
    };
    let dir = w.bed.work.join("volume-artifact");
    if !dir.join("dispatch").is_file() {
        crate::packed::unzip(Path::new(&charm), &dir)?;
    }
    w.charm_override = Some(dir);
    Ok(())
}

/// A requirer charm with no code at all (no `dispatch`, no hooks: Juju skips a hook the charm
/// does not have), its databags written by the test with `Sim::write_relation_data`, which
/// fires relation-changed on the integrator as a real requirer's `relation-set` would. Python
/// units would cost seconds of interpreter start-up per hook for nothing these scenarios check.
fn bare_requirer(bed: &Bed) -> Result<PathBuf> {
    let dir = bed.work.join("bare-requirer");
    if !dir.join("metadata.yaml").exists() {
        std::fs::create_dir_all(&dir)?;
        std::fs::write(
            dir.join("metadata.yaml"),
            "name: bare-requirer\nsummary: requirer whose databags the test writes\ndescription: it has no hooks\nrequires:\n  lxd:\n    interface: lxd\n",
        )?;
    }
    Ok(dir)
}

/// Deploys the bare requirer as `app` with `units` units and relates it to the integrator.
fn bare_app(w: &mut World, app: &str, units: u32) -> Result<RelationId> {
    let dir = bare_requirer(w.bed)?;
    w.sim.deploy(app, &dir, units)?;
    w.sim.relate(&format!("{INTEGRATOR}:api"), &format!("{app}:lxd"))
}

/// `unit` sends `value` as its `client_certificates`.
fn put(w: &mut World, rel: RelationId, unit: &str, value: &str) -> Result<()> {
    w.sim.write_relation_data(rel, unit, "client_certificates", Some(value))
}

/// `unit` sends these certificates, as a well-behaved requirer does.
fn put_certs(w: &mut World, rel: RelationId, unit: &str, pems: &[&Pem]) -> Result<()> {
    let list: Vec<&str> = pems.iter().map(|p| p.cert_pem.as_str()).collect();
    put(w, rel, unit, &serde_json::to_string(&list)?)
}

/// Records the integrator's peak RSS: every hook tool becomes a shell shim that appends the
/// caller's (`$PPID`: the charm) `VmHWM` before exec'ing the real tool, as `make bench` does
/// (bench/src/main.rs, `wrap_tools`). The charm's last tool call comes after its LXD work, so
/// the largest sample of a hook is its peak. The tools themselves are not counted. Beside it,
/// `RssFile`: the binary's own pages, which only grow in a process. The shipped binary's are
/// about 1.5 MiB; a debug test build's (85 MB unoptimised) about 12 MiB, which says nothing
/// about what the charm holds of what requirers send.
fn probe_rss(sim: &Sim) -> Result<PathBuf> {
    let tools = sim.root().join("tools");
    let real = tools.join(".real");
    let file = sim.root().join("rss.txt");
    std::fs::create_dir_all(&real)?;
    for e in std::fs::read_dir(&tools)? {
        let name = e?.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        std::fs::rename(tools.join(&name), real.join(&name))?;
        let script = format!(
            "#!/bin/sh\nhwm=; file=; while read -r k v _; do case $k in VmHWM:) hwm=$v;; RssFile:) file=$v;; esac; done < /proc/$PPID/status\necho \"$JUJU_UNIT_NAME $hwm $file\" >> '{}'\nexec '{}' \"$@\"\n",
            file.display(),
            real.join(&name).display()
        );
        std::fs::write(tools.join(&name), script)?;
        std::fs::set_permissions(tools.join(&name), std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(file)
}

/// The largest `VmHWM` and `RssFile` (KiB) sampled for the integrator's units.
fn peak_rss_kib(file: &Path) -> (u64, u64) {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let samples: Vec<Vec<u64>> = text
        .lines()
        .filter(|l| l.starts_with(INTEGRATOR))
        .map(|l| l.split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect())
        .collect();
    let max = |i: usize| samples.iter().filter_map(|s| s.get(i).copied()).max().unwrap_or(0);
    (max(0), max(1))
}

/// The integrator's WARNING and ERROR log lines, each cut to 200 bytes, for failure messages.
fn warnings(w: &World) -> Vec<String> {
    let logs = w.sim.logs().unwrap_or_default();
    logs.into_iter()
        .filter(|l| l.unit.starts_with(INTEGRATOR) && (l.level == "WARNING" || l.level == "ERROR"))
        .map(|l| l.message.chars().take(200).collect())
        .collect()
}

/// `n` distinct certificates from the shared factory.
fn client_certs(prefix: &str, n: usize) -> Result<Vec<Pem>> {
    (0..n).map(|i| certs::client_cert(&format!("{prefix}-{i}"))).collect()
}

// ---------------------------------------------------------------------------------------------
// 1. Ten thousand invalid entries

/// One unit of one requirer sends 10,000 entries that are not certificates, beside a unit
/// sending a good one. Before the fix the charm logged every problem in one `juju-log` argument
/// (> 128 KiB: E2BIG), so the hook failed; a unit runs nothing else until its failed hook
/// succeeds, and that one never would: another application's departing unit kept its entry.
fn v1_flood(bed: &mut Bed) -> Result<()> {
    let mut w = bed.world("flood")?;
    deploy_artifact(&mut w)?;
    w.deploy_integrator(1, true)?;
    let req = bare_app(&mut w, "req", 2)?;
    let other = bare_app(&mut w, "other", 2)?;
    let made = client_certs("flood", 3)?;
    let (good, keep, leaving) = (&made[0], &made[1], &made[2]);
    put_certs(&mut w, req, "req/1", &[good])?;
    put_certs(&mut w, other, "other/0", &[keep])?;
    put_certs(&mut w, other, "other/1", &[leaving])?;
    ensure!(w.owned_fps()? == [good, keep, leaving].map(|p| p.fingerprint.clone()).into(), "{:?}", w.owned());

    // Numbers, short strings and certificate-shaped blocks that are not X.509, in turn.
    let flood: Vec<Value> = (0..10_000u32)
        .map(|i| match i % 3 {
            0 => json!(i),
            1 => json!(format!("x{i}")),
            _ => json!(format!(
                "-----BEGIN CERTIFICATE-----\nZmFrZS1jZXJ0aWZpY2F0ZS0{i:08}\n-----END CERTIFICATE-----\n"
            )),
        })
        .collect();
    let flood = serde_json::to_string(&flood)?;
    let t = Instant::now();
    put(&mut w, req, "req/0", &flood)?;
    eprintln!("v1: {} KiB of invalid entries handled in {:.1?}", flood.len() / 1024, t.elapsed());
    let flooded = hooks_ok(&w, "after req/0 sent 10,000 invalid entries");

    // Another application's unit departs: its entry goes, whatever req/0 keeps sending. (A unit
    // whose hook failed runs no later hook until it is resolved: shown here even so.)
    w.sim.remove_unit("other/1")?;
    let revoked = w.owned_fps()? == [good, keep].map(|p| p.fingerprint.clone()).into();
    if let Err(e) = flooded {
        bail!(
            "{e:#}\nthen other/1 departed and its trust entry was {}",
            if revoked { "revoked" } else { "NOT revoked" }
        );
    }
    hooks_ok(&w, "after other/1 departed")?;
    ensure!(revoked, "other/1's entry must be revoked: {:?}", w.owned());
    ensure!(w.owned_fps()?.contains(&good.fingerprint), "req/1's certificate lost: {:?}", w.owned());
    let (status, message) = w.status(I0)?;
    ensure!(
        status == "active" && message.contains("req/0"),
        "the bad unit is named, nothing blocks: {status}: {message}"
    );
    let largest = finish(&w, &[])?;
    let logged: usize = w.sim.logs()?.iter().filter(|l| l.unit.starts_with(INTEGRATOR)).map(|l| l.message.len()).sum();
    eprintln!("v1: largest hook-tool argument {largest} bytes; {logged} bytes of juju-log in all");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 2. Sixteen MiB of padding

/// One unit sends just under Juju's 16 MiB databag limit: three valid certificates, each first
/// with megabytes of spaces on either side (whitespace around a PEM is allowed), then the same
/// three again and again with a little padding (CR LF, space, tab). The charm trusts each once
/// and publishes what it trusts, not what it was sent: before the fix the first spelling was
/// echoed byte for byte into `registered_certificates`, in both databags.
fn v2_padding(bed: &mut Bed) -> Result<()> {
    let mut w = bed.world("padding")?;
    deploy_artifact(&mut w)?;
    w.deploy_integrator(1, true)?;
    let rel = bare_app(&mut w, "padder", 1)?;
    let distinct = client_certs("padded", 3)?;
    // Room for the key name and Juju's address keys under the limit.
    let target = jujusim::model::MAX_DATABAG_BYTES - 4096;
    let value = padded_list(&distinct, 300, target)?;
    let bag_size = value.len()
        + "client_certificates".len()
        + w.sim.relation_data(rel, "padder/0")?.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
    ensure!(bag_size <= jujusim::model::MAX_DATABAG_BYTES && bag_size > 15 * MIB, "the databag is {bag_size} bytes");
    let t = Instant::now();
    put(&mut w, rel, "padder/0", &value)?;
    eprintln!("v2: {:.1} MiB databag handled in {:.1?}", bag_size as f64 / MIB as f64, t.elapsed());
    hooks_ok(&w, "after a 16 MiB databag of padded certificates")?;

    let want: BTreeSet<String> = distinct.iter().map(|p| p.fingerprint.clone()).collect();
    let owned = w.owned()?;
    ensure!(owned.len() == 3 && w.owned_fps()? == want, "each certificate trusted once: {owned:?}");
    let (entries, fps) = registered_fps(&w, rel)?;
    ensure!(
        entries == 3 && fps == want,
        "registered_certificates lists each certificate once: {entries} entries, {fps:?}"
    );
    let published = published_bytes(&w, rel)?;
    eprintln!("v2: the integrator publishes {published} bytes");
    ensure!(
        published < 64 * 1024,
        "the integrator publishes {published} bytes for 3 certificates (input: {bag_size} bytes)"
    );
    finish(&w, &[]).map(drop)
}

/// A JSON list of `copies` + 3 entries, `target` bytes long: each certificate once with
/// megabytes of whitespace around it, then `copies` lightly padded repeats.
fn padded_list(distinct: &[Pem], copies: usize, target: usize) -> Result<String> {
    let build = |pad: usize| {
        let mut list: Vec<String> =
            distinct.iter().map(|p| format!("{}\n{}\n{}", " ".repeat(pad), p.cert_pem, " ".repeat(pad))).collect();
        list.extend((0..copies).map(|i| format!("\r\n \t{}\t \r\n", distinct[i % distinct.len()].cert_pem)));
        serde_json::to_string(&list)
    };
    let base = build(0)?.len();
    ensure!(base < target, "{copies} copies alone are {base} bytes");
    // Spaces cost one byte each in JSON: 2 × pad per certificate.
    let pad = (target - base) / (2 * distinct.len());
    let value = build(pad)?;
    ensure!(value.len() <= target, "{} > {target}", value.len());
    Ok(value)
}

// ---------------------------------------------------------------------------------------------
// 3. Many units of a MiB each

/// Units in `v3`; `LXD_E2E_VOLUME_UNITS=100` asks for the full size by hand. Unit k's
/// write fires a hook that reads k databags of 1 MiB (each `relation-get` reads only the databag
/// it names), so the run grows with the square of the units.
const UNITS: u32 = 8;
const UNIT_BYTES: usize = MIB;

/// Several units each send one valid certificate inside ~1 MiB of padding and garbage (every
/// value eight times the kernel's limit for one hook-tool argument). Every hook exits 0, every
/// certificate is trusted, and what the integrator publishes grows with the certificates, not
/// with what it read. Its peak RSS and hook times are printed.
fn v3_many_units(bed: &mut Bed) -> Result<()> {
    let units: u32 = match std::env::var("LXD_E2E_VOLUME_UNITS") {
        Ok(v) => v.parse().context("LXD_E2E_VOLUME_UNITS")?,
        Err(_) => UNITS,
    };
    let mut w = bed.world("many-units")?;
    let rss = probe_rss(&w.sim)?;
    w.sim.set_copy_mode(CopyMode::HardLink);
    deploy_artifact(&mut w)?;
    w.deploy_integrator(1, true)?;
    let rel = bare_app(&mut w, "bulk", units)?;
    let pems = client_certs("bulk", units as usize)?;
    let t = Instant::now();
    for (i, pem) in pems.iter().enumerate() {
        // A quarter MiB of spaces either side of the certificate, then half a MiB of junk.
        let pad = " ".repeat(UNIT_BYTES / 4);
        let value = serde_json::to_string(&[format!("{pad}\n{}\n{pad}", pem.cert_pem), "A".repeat(UNIT_BYTES / 2)])?;
        put(&mut w, rel, &format!("bulk/{i}"), &value)?;
    }
    // The figures first, so a failing run shows them too.
    let (n, slowest, total) = hook_times(&w)?;
    let published = published_bytes(&w, rel)?;
    let (peak, binary) = peak_rss_kib(&rss);
    let build = if std::env::var_os("LXD_INTEGRATOR_CHARM").is_some_and(|p| !p.is_empty()) {
        "the packed artifact"
    } else {
        "the test build"
    };
    eprintln!(
        "v3: {units} units × {} KiB sent in {:.1?}; integrator peak RSS {:.1} MiB ({:.1} MiB of it the pages of {build}'s binary); {n} hooks, slowest {slowest:.0} ms, all {total:.0} ms; publishes {published} bytes",
        UNIT_BYTES / 1024,
        t.elapsed(),
        peak as f64 / 1024.0,
        binary as f64 / 1024.0,
    );
    // What it holds of what is sent stays under a bound that does not grow with it.
    ensure!(peak.saturating_sub(binary) <= 16 * 1024, "integrator peak RSS {peak} KiB, {binary} KiB of it its binary");
    hooks_ok(&w, &format!("with {units} units of ~{} KiB each", UNIT_BYTES / 1024))?;
    let want: BTreeSet<String> = pems.iter().map(|p| p.fingerprint.clone()).collect();
    let owned = w.owned_fps()?;
    ensure!(owned == want, "{} of {units} certificates trusted", owned.intersection(&want).count());
    let (entries, fps) = registered_fps(&w, rel)?;
    ensure!(
        entries == units as usize && fps == want,
        "registered_certificates: {entries} entries for {units} certificates"
    );
    // Two databags, each with one canonical PEM (< 1 KiB for P-384) per certificate, plus nodes.
    ensure!(
        published < 16 * 1024 + units as usize * 4 * 1024,
        "the integrator publishes {published} bytes for {units} certificates"
    );
    let largest = finish(&w, &[])?;
    eprintln!("v3: largest hook-tool argument {largest} bytes");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 4. What `openssl req -x509` makes

/// `openssl req -x509` marks its certificate CA:TRUE (OpenSSL 3's default `v3_ca` extensions).
/// Many operators make client certificates that way, and LXD trusts them as clients: the charm
/// must not refuse one for being a CA. Proved with a real `GET /1.0` as that client.
fn v4_openssl_ca_true(bed: &mut Bed) -> Result<()> {
    let made = certs::openssl_ec_client_cert("openssl-made")?;
    let text = openssl(&["x509", "-noout", "-text"], &made.cert_pem)?;
    ensure!(text.contains("CA:TRUE"), "openssl made no CA:TRUE certificate:\n{text}");
    let mut w = bed.world("ca-true")?;
    let endpoint = w.bed.cluster.endpoint(0);
    let files = w.bed.work.join("ca-true-client");
    std::fs::create_dir_all(&files)?;
    ensure!(auth_as(&files, &made, &endpoint)? == "untrusted", "LXD must not know this client yet");
    deploy_artifact(&mut w)?;
    w.deploy_integrator(1, true)?;
    let rel = bare_app(&mut w, "req", 1)?;
    put_certs(&mut w, rel, "req/0", &[&made])?;
    hooks_ok(&w, "after a CA:TRUE client certificate")?;
    ensure!(
        w.owned_fps()? == [made.fingerprint.clone()].into(),
        "not trusted: {:?}; status {:?}; warnings {:?}",
        w.owned(),
        w.status(I0),
        warnings(&w)
    );
    let (_, fps) = registered_fps(&w, rel)?;
    ensure!(fps == [made.fingerprint.clone()].into(), "not registered: {fps:?}");
    ensure!(auth_as(&files, &made, &endpoint)? == "trusted", "LXD does not trust it as a client");
    finish(&w, &[]).map(drop)
}

fn openssl(args: &[&str], stdin: &str) -> Result<String> {
    use std::io::Write;
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("running openssl (make setup installs it)")?;
    child.stdin.take().context("stdin")?.write_all(stdin.as_bytes())?;
    let out = child.wait_with_output()?;
    ensure!(out.status.success(), "openssl {args:?} failed");
    Ok(String::from_utf8(out.stdout)?)
}

/// `auth` of `GET /1.0` as the client `who`, with curl. The server is the test's own loopback
/// cluster, so its certificate is not checked (`-k`): this asks only how LXD sees the client.
fn auth_as(dir: &Path, who: &Pem, endpoint: &str) -> Result<String> {
    let (cert, key) = (dir.join("client.crt"), dir.join("client.key"));
    std::fs::write(&cert, &who.cert_pem)?;
    std::fs::write(&key, &who.key_pem)?;
    let out = Command::new("curl")
        .args(["-sS", "-k", "--max-time", "10", "--cert"])
        .arg(&cert)
        .arg("--key")
        .arg(&key)
        .arg(format!("https://{endpoint}/1.0"))
        .output()
        .context("running curl (make setup installs it)")?;
    ensure!(out.status.success(), "curl GET /1.0: {}", String::from_utf8_lossy(&out.stderr));
    let body: Value = serde_json::from_slice(&out.stdout).context("GET /1.0 answered non-JSON")?;
    Ok(body["metadata"]["auth"].as_str().unwrap_or("").to_string())
}

// ---------------------------------------------------------------------------------------------
// 5. A private key pasted into config

/// Without `juju trust` the charm reads its credentials from config. An operator pastes a
/// private key (here after a marker line) into the wrong option: the unit blocks naming the
/// option, and neither the key nor the marker comes back in anything Juju shows or keeps. Each
/// option on a fresh deployment, so what one leaves in the records is not blamed on the next;
/// what goes wrong with one is reported after trying them all.
fn v5_pasted_key(bed: &mut Bed) -> Result<()> {
    let pasted = certs::client_cert("pasted-by-mistake")?;
    let marker = "MARKER-3b9f1c-pasted-value";
    let value = format!("{marker}\n{}", pasted.key_pem);
    let mut secrets = vec![marker];
    secrets.extend(pasted.key_pem.lines().filter(|l| !l.starts_with("-----") && l.len() >= 16));
    let mut failures = Vec::new();
    for option in ["lxd_endpoint", "lxd_client_cert", "lxd_server_cert", "trust-projects"] {
        if let Err(e) = pasted_into(bed, option, &value, &secrets) {
            failures.push(format!("{option}: {e:#}"));
        }
    }
    ensure!(failures.is_empty(), "with a private key pasted into config:\n{}", failures.join("\n"));
    Ok(())
}

fn pasted_into(bed: &mut Bed, option: &str, value: &str, secrets: &[&str]) -> Result<()> {
    let mut w = bed.world(&format!("pasted-{option}"))?;
    deploy_artifact(&mut w)?;
    w.deploy_integrator(1, false)?;
    let rel = bare_app(&mut w, "req", 1)?;
    let spec = w.cloud_spec();
    let attrs = &spec["credential"]["attrs"];
    let good = [
        ("lxd_endpoint", spec["endpoint"].clone()),
        ("lxd_client_cert", attrs["client-cert"].clone()),
        ("lxd_client_key", attrs["client-key"].clone()),
        ("lxd_server_cert", attrs["server-cert"].clone()),
    ];
    w.sim.set_config(INTEGRATOR, &good.iter().map(|(k, v)| (*k, Some(v.clone()))).collect::<Vec<_>>())?;
    let a = certs::client_cert("a")?;
    put_certs(&mut w, rel, "req/0", &[&a])?;
    ensure!(w.status(I0)?.0 == "active" && w.owned()?.len() == 1, "config credentials work: {:?}", w.status(I0));

    w.sim.set_config(INTEGRATOR, &[(option, Some(json!(value)))])?;
    w.update_status()?;
    let check = w.sim.run_action(I0, "check-connection", json!({}))?;
    hooks_ok(&w, "")?;
    let (status, message) = w.status(I0)?;
    let shown = format!("{} {}", check.results, check.message.as_deref().unwrap_or(""));
    for s in secrets {
        ensure!(!message.contains(s), "the pasted value is in the status: {message:.60}…");
        ensure!(!shown.contains(s), "the pasted value is in check-connection's result: {shown:.80}…");
    }
    finish(&w, secrets)?;
    ensure!(
        status == "blocked" && message.contains(option),
        "the unit must block naming {option}: {status}: {message}"
    );
    Ok(())
}
