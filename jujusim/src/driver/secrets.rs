//! User secrets (Juju >= 3.3): what a model admin does with `juju *-secret`.

use anyhow::{anyhow, bail};

use crate::model::{self, Event, Model};

use super::{Sim, has_user_secrets};

/// Finds a user secret by URI (`secret:<id>`, bare `<id>`) or by name, as the `juju *-secret`
/// commands take it.
fn find_secret<'m>(m: &'m mut Model, secret: &str) -> anyhow::Result<&'m mut model::Secret> {
    let id = match crate::secrets::Uri::parse(secret) {
        Some(uri) => Some(uri.id),
        None => m.secrets.values().find(|s| s.name == secret).map(|s| s.id.clone()),
    };
    id.and_then(|id| m.secrets.get_mut(&id)).ok_or_else(|| anyhow!("secret {secret:?} not found"))
}

/// Queues `secret-changed` for every unit that reads `id` and was not yet told about its
/// latest revision; one pending hook per unit and secret, about the newest revision (the
/// uniter's secrets resolver compares what it last told the charm with the latest).
fn queue_secret_changed(m: &mut Model, id: &str) {
    let Some(secret) = m.secrets.get(id) else { return };
    let latest = secret.latest();
    let units: Vec<String> = secret
        .consumers
        .iter()
        .filter(|(u, c)| c.notified != latest && m.units.get(*u).is_some_and(|unit| !unit.dying))
        .map(|(u, _)| u.clone())
        .collect();
    for u in units {
        m.queue.retain(|e| {
            !(e.unit == u && e.kind == "secret-changed" && e.secret.as_ref().is_some_and(|(s, _)| s == id))
        });
        let mut e = Event::simple(&u, "secret-changed");
        e.secret = Some((id.to_string(), latest));
        m.queue.push(e);
    }
}

impl Sim {
    /// `juju add-secret <name> key=value...`: a new secret owned by the model, revision 1.
    /// Returns its URI (`secret:<id>`). Keys must match Juju's key pattern; values are kept
    /// base64, as Juju stores them. No hook runs.
    pub fn add_secret(&mut self, name: &str, content: &[(&str, &str)]) -> anyhow::Result<String> {
        let uri = self.write(|m| {
            if !has_user_secrets(&m.juju_version) {
                bail!("user secrets need Juju 3.3 or later; this model runs {}", m.juju_version);
            }
            if !crate::secrets::is_valid_name(name) {
                bail!("secret name {name:?} not valid");
            }
            if m.secrets.values().any(|s| s.name == name) {
                bail!("secret with name {name:?} already exists");
            }
            let data = crate::secrets::encode_content(content).map_err(|e| anyhow!(e))?;
            let id = crate::secrets::new_id();
            let secret =
                model::Secret { id: id.clone(), name: name.into(), revisions: vec![data], ..Default::default() };
            let uri = secret.uri();
            m.secrets.insert(id, secret);
            Ok(uri)
        })?;
        self.flush()?;
        Ok(uri)
    }

    /// `juju update-secret <secret> key=value...`: a new revision holding exactly `content`;
    /// every unit that reads the secret runs `secret-changed`.
    pub fn update_secret(&mut self, secret: &str, content: &[(&str, &str)]) -> anyhow::Result<()> {
        self.write(|m| {
            let data = crate::secrets::encode_content(content).map_err(|e| anyhow!(e))?;
            let s = find_secret(m, secret)?;
            s.revisions.push(data);
            let id = s.id.clone();
            queue_secret_changed(m, &id);
            Ok(())
        })?;
        self.settle()
    }

    /// `juju grant-secret <secret> <app>`: the application's units may read it. No hook runs:
    /// a unit notices at its next hook.
    pub fn grant_secret(&mut self, secret: &str, app: &str) -> anyhow::Result<()> {
        self.write(|m| {
            if !m.apps.contains_key(app) {
                bail!("application {app:?} not found");
            }
            find_secret(m, secret)?.grants.insert(app.to_string());
            Ok(())
        })?;
        self.flush()
    }

    /// `juju revoke-secret <secret> <app>`: only the permission goes (juju/juju
    /// `state/secrets.go` `RevokeSecretAccess`); consumer records stay, so a later update
    /// still runs `secret-changed`, whose `secret-get` is then denied. No hook runs.
    pub fn revoke_secret(&mut self, secret: &str, app: &str) -> anyhow::Result<()> {
        self.write(|m| {
            find_secret(m, secret)?.grants.remove(app);
            Ok(())
        })?;
        self.flush()
    }

    /// `juju remove-secret <secret>`: gone with every revision. Consumers run no hook (the
    /// uniter only forgets it); their next `secret-get` finds nothing.
    pub fn remove_secret(&mut self, secret: &str) -> anyhow::Result<()> {
        self.write(|m| {
            let id = find_secret(m, secret)?.id.clone();
            m.secrets.remove(&id);
            m.queue.retain(|e| e.secret.as_ref().is_none_or(|(s, _)| *s != id));
            Ok(())
        })?;
        self.flush()
    }

    /// A user secret as the controller keeps it (revisions base64), by URI or name.
    pub fn secret(&self, secret: &str) -> anyhow::Result<model::Secret> {
        let mut m = self.read()?;
        Ok(find_secret(&mut m, secret)?.clone())
    }
}
