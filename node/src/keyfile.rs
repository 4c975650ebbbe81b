//! Key files: JSON `{ "public_key": hex, "secret_key": hex }`, created with mode 0600.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail};
use auditchain_primitives::SecretKey;
use auditchain_primitives::keys::KeyFile;

/// Writes `key` to `path` with mode 0600. Refuses to overwrite unless `force`.
/// Errors: the file exists, or I/O.
pub fn write(path: &Path, key: &SecretKey, force: bool) -> anyhow::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true);
    if force {
        opts.create(true).truncate(true);
    } else {
        opts.create_new(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).with_context(|| {
        if path.exists() && !force {
            format!("{} exists; pass --force to overwrite it", path.display())
        } else {
            format!("creating key file {}", path.display())
        }
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    let text = serde_json::to_string_pretty(&KeyFile::from_secret(key))?;
    f.write_all(text.as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()?;
    Ok(())
}

/// Reads a key file. Errors: unreadable file, malformed JSON, or a public key that does not
/// match the secret key.
pub fn read(path: &Path) -> anyhow::Result<SecretKey> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading key file {}", path.display()))?;
    let kf: KeyFile = serde_json::from_str(&text).with_context(|| {
        format!(
            "key file {}: expected {{\"public_key\", \"secret_key\"}}",
            path.display()
        )
    })?;
    match kf.secret() {
        Ok(k) => Ok(k),
        Err(e) => bail!("key file {}: {e}", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_mode_and_no_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k.json");
        let k = SecretKey::generate();
        write(&p, &k, false).unwrap();
        assert_eq!(read(&p).unwrap().public_key(), k.public_key());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        assert!(write(&p, &SecretKey::generate(), false).is_err());
        write(&p, &SecretKey::generate(), true).unwrap();
        std::fs::write(&p, "{\"public_key\":\"00\"}").unwrap();
        assert!(read(&p).is_err());
    }
}
