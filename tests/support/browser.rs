//! A real browser for the page tests: Debian's `chromium`, headless, driven through the
//! DevTools protocol over its WebSocket (`--remote-debugging-port`). Pages are opened from
//! disk; the tab records every request the page made and every console and security
//! message (a Content-Security-Policy violation is one), so a test can assert that nothing
//! ran and nothing loaded.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};
use tungstenite::WebSocket;

/// How long any one answer of the browser may take.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

/// The browser binary: `CHROMIUM`, else `chromium` on PATH.
pub fn binary() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".to_owned())
}

/// A headless browser, closed on drop.
pub struct Browser {
    child: Child,
    socket: WebSocket<TcpStream>,
    next_id: u64,
    /// Events that arrived while waiting for an answer, in order.
    events: Vec<Value>,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts the browser; why not (no browser installed, it did not start).
    pub fn launch() -> Result<Browser, String> {
        let profile = tempfile::tempdir().map_err(|e| e.to_string())?;
        let mut child = Command::new(binary())
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--remote-debugging-port=0",
                "--hide-scrollbars",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            // Its scratch files go into the profile too, and leave with it.
            .env("TMPDIR", profile.path())
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {} ({e}): install Debian's chromium", binary()))?;
        // The browser names its DevTools endpoint on standard error.
        let stderr = child.stderr.take().expect("piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("DevTools listening on ") {
                    let _ = tx.send(url.trim().to_owned());
                }
            }
        });
        let Ok(url) = rx.recv_timeout(ANSWER_TIMEOUT) else {
            let _ = child.kill();
            return Err("the browser did not open its DevTools endpoint".into());
        };
        let address = url
            .strip_prefix("ws://")
            .and_then(|rest| rest.split('/').next())
            .ok_or_else(|| format!("unexpected DevTools URL {url}"))?
            .to_owned();
        let stream = TcpStream::connect(&address).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(ANSWER_TIMEOUT))
            .map_err(|e| e.to_string())?;
        let (socket, _) = tungstenite::client(url.as_str(), stream).map_err(|e| e.to_string())?;
        Ok(Browser {
            child,
            socket,
            next_id: 0,
            events: Vec::new(),
            _profile: profile,
        })
    }

    /// Sends `method` (to the tab of `session`, if given) and returns its result.
    fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            message["sessionId"] = json!(s);
        }
        self.socket
            .send(tungstenite::Message::text(message.to_string()))
            .expect("the browser takes a command");
        loop {
            let answer = self.read();
            if answer["id"] == id {
                assert!(
                    answer.get("error").is_none(),
                    "{method}: {}",
                    answer["error"]
                );
                return answer["result"].clone();
            }
            self.events.push(answer);
        }
    }

    fn read(&mut self) -> Value {
        loop {
            match self.socket.read().expect("the browser answers in time") {
                tungstenite::Message::Text(text) => {
                    return serde_json::from_str(text.as_str()).expect("DevTools speaks JSON");
                }
                tungstenite::Message::Close(_) => panic!("the browser closed the connection"),
                _ => {}
            }
        }
    }

    /// Opens `page` (a file) in a new tab of `width`×`height` and waits for its load event
    /// (the page's own script has run by then).
    pub fn open(&mut self, page: &Path, width: u32, height: u32) -> Tab<'_> {
        self.open_with(page, width, height, true)
    }

    /// [`Browser::open`] with the page's scripts off, as a reader who disabled them.
    pub fn open_without_scripts(&mut self, page: &Path, width: u32, height: u32) -> Tab<'_> {
        self.open_with(page, width, height, false)
    }

    fn open_with(&mut self, page: &Path, width: u32, height: u32, scripts: bool) -> Tab<'_> {
        let target = self.call(None, "Target.createTarget", json!({"url": "about:blank"}));
        let attached = self.call(
            None,
            "Target.attachToTarget",
            json!({"targetId": target["targetId"], "flatten": true}),
        );
        let session = attached["sessionId"]
            .as_str()
            .expect("a session")
            .to_owned();
        for domain in [
            "Page.enable",
            "Network.enable",
            "Log.enable",
            "Runtime.enable",
        ] {
            self.call(Some(&session), domain, json!({}));
        }
        self.call(
            Some(&session),
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false}),
        );
        if !scripts {
            self.call(
                Some(&session),
                "Emulation.setScriptExecutionDisabled",
                json!({"value": true}),
            );
        }
        self.events.clear();
        let url = format!(
            "file://{}",
            page.canonicalize().expect("the page exists").display()
        );
        self.call(Some(&session), "Page.navigate", json!({"url": url}));
        let loaded = |e: &Value| e["method"] == "Page.loadEventFired" && e["sessionId"] == session;
        while !self.events.iter().any(loaded) {
            let event = self.read();
            self.events.push(event);
        }
        Tab {
            browser: self,
            session,
            url,
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One open page.
pub struct Tab<'b> {
    browser: &'b mut Browser,
    session: String,
    url: String,
}

impl Tab<'_> {
    /// The value of the JavaScript expression `js` in the page (outside its
    /// Content-Security-Policy, as DevTools runs it); a thrown exception panics.
    pub fn eval(&mut self, js: &str) -> Value {
        let result = self.browser.call(
            Some(&self.session),
            "Runtime.evaluate",
            json!({"expression": js, "returnByValue": true, "awaitPromise": true}),
        );
        assert!(
            result.get("exceptionDetails").is_none(),
            "{js}: {}",
            result["exceptionDetails"]
        );
        result["result"]["value"].clone()
    }

    /// Writes a PNG of the viewport to `path`.
    pub fn screenshot(&mut self, path: &Path) {
        use base64::Engine;
        let shot = self.browser.call(
            Some(&self.session),
            "Page.captureScreenshot",
            json!({"format": "png"}),
        );
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().expect("PNG data"))
            .expect("base64");
        std::fs::write(path, png).expect("the screenshot is written");
    }

    fn events(&self) -> impl Iterator<Item = &Value> {
        self.browser
            .events
            .iter()
            .filter(|e| e["sessionId"] == self.session.as_str())
    }

    /// Every URL the page asked for, besides the page itself (blocked ones included).
    pub fn requests(&self) -> Vec<String> {
        self.events()
            .filter(|e| e["method"] == "Network.requestWillBeSent")
            .filter_map(|e| e["params"]["request"]["url"].as_str())
            .filter(|u| *u != self.url)
            .map(str::to_owned)
            .collect()
    }

    /// Console, log and security messages, and uncaught exceptions (a Content Security
    /// Policy violation is reported here).
    pub fn messages(&self) -> Vec<String> {
        self.events()
            .filter_map(|e| match e["method"].as_str()? {
                "Log.entryAdded" => Some(e["params"]["entry"]["text"].to_string()),
                "Runtime.consoleAPICalled" => Some(e["params"]["args"].to_string()),
                "Runtime.exceptionThrown" => Some(e["params"]["exceptionDetails"].to_string()),
                _ => None,
            })
            .collect()
    }
}
