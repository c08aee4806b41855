//! A server program run as a process of its own, so that its memory and
//! CPU are its own to measure: started on a free loopback port, its address
//! read from its log, stopped by SIGTERM or killed when dropped.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    pub addr: SocketAddr,
}

impl ServerProcess {
    /// Runs `binary` (`cloacina-server`, or `cloacinactl server start`'s
    /// flags after `args`) with `--home home --bind 127.0.0.1:0
    /// --in-process --bootstrap-key key`, and waits for its address.
    pub fn start(binary: &Path, args: &[&str], home: &Path, key: &str) -> ServerProcess {
        ServerProcess::start_with(binary, args, home, key, true)
    }

    /// As [`ServerProcess::start`], with `--in-process` only when
    /// `in_process`: otherwise native libraries run as the server runs them
    /// by default, each in a `cloacina-plugin-worker` process (which must
    /// be installed beside `binary`).
    pub fn start_with(
        binary: &Path,
        args: &[&str],
        home: &Path,
        key: &str,
        in_process: bool,
    ) -> ServerProcess {
        let mut child = Command::new(binary)
            .args(args)
            .arg("--home")
            .arg(home)
            .args(["--bind", "127.0.0.1:0"])
            .args(in_process.then_some("--in-process"))
            .args(["--bootstrap-key", key])
            .env("CLOACINA_LOG", "info,sqlx=warn")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}", binary.display()));
        let stderr = child.stderr.take().expect("stderr is piped");
        let (sender, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = sender.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let addr = loop {
            let line = lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .expect("the server logs the address it serves");
            if line.contains("serving the HTTP API")
                && let Some(addr) = line.split("addr=").nth(1)
            {
                break addr.trim().parse().expect("an address");
            }
        };
        ServerProcess { child, addr }
    }

    /// SIGTERM (`kill -TERM`): the server stops taking requests and lets
    /// running tasks finish. Its exit status; SIGKILL when it has not
    /// exited within `patience`.
    pub fn terminate(&mut self, patience: Duration) -> std::io::Result<ExitStatus> {
        let pid = self.child.id().to_string();
        let signalled = Command::new("kill").args(["-TERM", &pid]).status()?;
        if !signalled.success() {
            return Err(std::io::Error::other(format!(
                "kill -TERM {pid} failed: {signalled}"
            )));
        }
        let deadline = Instant::now() + patience;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                self.child.kill()?;
                return self.child.wait();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: no chance to save or say anything; reaped before this
    /// returns.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The process's open file descriptors (the entries of
    /// `/proc/PID/fd`).
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .expect("/proc/PID/fd")
            .count()
    }

    /// A memory figure of the process (`VmRSS`, `VmHWM`: the peak), MiB.
    pub fn memory_mib(&self, field: &str) -> u64 {
        status_kib(self.child.id(), field)
            .unwrap_or_else(|| panic!("no {field} in /proc/PID/status"))
            / 1024
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A figure of process `pid`'s `/proc/PID/status` given in kB (`VmRSS`,
/// `VmHWM`...); None when the process or the field is gone.
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| {
            value
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
}
