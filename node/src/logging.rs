//! Logging through `tracing` to stderr, with a filter that can be replaced at run time
//! (`admin_setLogLevel`). The initial filter is `RUST_LOG`, else `info`.

use std::sync::OnceLock;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry, fmt, reload};

type Setter = Box<dyn Fn(EnvFilter) -> Result<(), String> + Send + Sync>;

static SETTER: OnceLock<Setter> = OnceLock::new();

/// Installs the global subscriber (once; later calls do nothing).
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let (layer, handle) = reload::Layer::<EnvFilter, Registry>::new(filter);
    if tracing_subscriber::registry()
        .with(layer)
        .with(fmt::layer().with_writer(std::io::stderr))
        .try_init()
        .is_ok()
    {
        let _ = SETTER.set(Box::new(move |f| {
            handle.reload(f).map_err(|e| e.to_string())
        }));
    }
}

/// Replaces the log filter (`RUST_LOG` syntax). Errors: a filter that does not parse, or
/// logging not installed by [`init`] (embedded nodes, tests).
pub fn set_filter(filter: &str) -> Result<(), String> {
    let f = EnvFilter::try_new(filter).map_err(|e| format!("filter {filter:?}: {e}"))?;
    let set = SETTER
        .get()
        .ok_or("log filter control is not installed in this process")?;
    set(f)
}
