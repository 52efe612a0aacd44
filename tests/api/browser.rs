//! A real headless Chromium driven over WebDriver (Debian's `chromium` and `chromium-driver`,
//! installed by `scripts/test`): one chromedriver and one browser profile per test, killed
//! with the guard.

use crate::wait::eventually;
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use std::time::Duration;

/// chromedriver on a free port, in a process group of its own with the browser it starts;
/// the guard kills the whole group (a test that panics leaves no Chromium behind).
struct Driver(std::process::Child);

impl Drop for Driver {
    fn drop(&mut self) {
        if let Ok(group) = i32::try_from(self.0.id()) {
            // SAFETY: kill(2) with a negative pid signals the group; no memory is involved.
            unsafe { libc::kill(-group, libc::SIGKILL) };
        }
        let _ = self.0.wait();
    }
}

pub struct Browser {
    pub client: Client,
    _driver: Driver,
    _profile: tempfile::TempDir,
}

/// How a test's browser is set up.
#[derive(Clone, Copy)]
pub struct Options {
    pub javascript: bool,
    pub width: u32,
}

impl Default for Options {
    fn default() -> Self {
        Self { javascript: true, width: 1280 }
    }
}

impl Browser {
    pub async fn start() -> Self {
        Self::with(Options::default()).await
    }

    pub async fn with(options: Options) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        use std::os::unix::process::CommandExt;
        let child = std::process::Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("chromedriver is installed (scripts/test installs Debian's chromium-driver)");
        let driver = Driver(child);
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        eventually(Duration::from_secs(15), "chromedriver answers", || {
            let http = http.clone();
            async move { http.get(format!("http://127.0.0.1:{port}/status")).send().await.is_ok() }
        })
        .await;
        let profile = tempfile::tempdir().unwrap();
        let mut chrome = json!({"binary": "/usr/bin/chromium", "args": [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-dev-shm-usage", format!("--window-size={},900", options.width),
            format!("--user-data-dir={}", profile.path().display())
        ]});
        // A headless window is at least 500 px wide: narrower viewports are emulated. (Only
        // then: with scripts off, an emulated device hangs chromedriver's element commands.)
        if options.width < 500 {
            chrome["mobileEmulation"] =
                json!({"deviceMetrics": {"width": options.width, "height": 900, "pixelRatio": 1.0}});
        }
        if !options.javascript {
            chrome["prefs"] = json!({"profile.managed_default_content_settings.javascript": 2});
        }
        let mut caps = serde_json::Map::new();
        caps.insert("goog:chromeOptions".into(), chrome);
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a browser session");
        // A page that never finishes loading fails the test in seconds, not in five minutes.
        let timeouts = fantoccini::wd::TimeoutConfiguration::new(
            Some(Duration::from_secs(10)),
            Some(Duration::from_secs(20)),
            Some(Duration::ZERO),
        );
        client.update_timeouts(timeouts).await.expect("browser timeouts");
        Self { client, _driver: driver, _profile: profile }
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    /// The element with this CSS selector, waiting for it up to 10 s.
    pub async fn find(&self, css: &str) -> Element {
        match self.client.wait().at_most(Duration::from_secs(10)).for_element(Locator::Css(css)).await {
            Ok(element) => element,
            Err(e) => {
                let at = self.client.current_url().await.ok();
                let page = self.client.source().await.unwrap_or_default();
                panic!("no element {css:?} on {at:?}: {e}\n{page}")
            }
        }
    }

    pub async fn exists(&self, css: &str) -> bool {
        self.client.find(Locator::Css(css)).await.is_ok()
    }

    /// Clears an input and types `text`.
    pub async fn fill(&self, css: &str, text: &str) {
        let input = self.find(css).await;
        input.clear().await.unwrap();
        input.send_keys(text).await.unwrap();
    }

    pub async fn click(&self, css: &str) {
        self.find(css).await.click().await.unwrap();
    }

    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.unwrap()
    }

    /// Waits until the element's text is `wanted` (the page after a click may not be there yet).
    pub async fn wait_for_text(&self, css: &str, wanted: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let text = match self.client.find(Locator::Css(css)).await {
                Ok(e) => e.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if text == wanted {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "{css} never read {wanted:?}; it reads {text:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn path(&self) -> String {
        self.client.current_url().await.unwrap().path().to_string()
    }

    /// Waits until the page's path is `path`.
    pub async fn wait_for_path(&self, wanted: impl Fn(&str) -> bool, what: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let path = self.path().await;
            if wanted(&path) {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "never reached {what}; at {path}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Runs a script in the page and returns its value.
    pub async fn eval(&self, script: &str) -> serde_json::Value {
        self.client.execute(script, vec![]).await.unwrap()
    }

    /// axe-core's accessibility violations on the current page: `[rule, impact, nodes, first
    /// target]` each. The page's CSP forbids inline script; WebDriver's execute runs outside it.
    pub async fn axe_violations(&self) -> Vec<serde_json::Value> {
        self.client.execute(&format!("{}; return true;", axe_source()), vec![]).await.expect("axe-core loads");
        let found = self
            .client
            .execute_async(
                "const done = arguments[0]; axe.run(document).then(r => done(r.violations.map(v => \
                 [v.id, v.impact, v.nodes.length, v.nodes[0].target]))).catch(e => done(['axe failed', String(e)]));",
                vec![],
            )
            .await
            .expect("axe-core runs");
        match found {
            serde_json::Value::Array(violations) => violations,
            other => vec![other],
        }
    }

    /// Saves a screenshot as `target/screenshots/<name>.png` (not committed).
    pub async fn screenshot(&self, name: &str) {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/target/screenshots");
        let _ = std::fs::create_dir_all(dir);
        if let Ok(png) = self.client.screenshot().await {
            let _ = std::fs::write(format!("{dir}/{name}.png"), png);
        }
    }

    pub async fn close(self) {
        let _ = self.client.close().await;
    }
}

/// axe-core's script: `AXE_JS`, or where `scripts/test` installs it from npm.
fn axe_source() -> &'static str {
    static SOURCE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SOURCE.get_or_init(|| {
        let path = std::env::var("AXE_JS").unwrap_or_else(|_| {
            concat!(env!("CARGO_MANIFEST_DIR"), "/target/axe/node_modules/axe-core/axe.min.js").to_string()
        });
        std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!("axe-core at {path}: {e} (scripts/test installs it: npm install axe-core@4.14.1)")
        })
    })
}
