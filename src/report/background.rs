//! A [`ReportWriter`] on a thread of its own, so that writing the report
//! overlaps with reading the capture.

use std::io::{self, Write};
use std::sync::mpsc;
use std::thread;

use super::ReportWriter;
use crate::analyze::model::Connection;

/// Connections handed over per message to the writer thread.
const BATCH: usize = 256;

/// The report's writer on a thread of its own, so writing the report (a
/// third of the work for JSON) overlaps with reading the capture. Bounded:
/// at most a few batches wait, so memory stays flat when the output is slow.
pub struct BackgroundWriter<W: Write> {
    tx: Option<mpsc::SyncSender<Vec<Connection>>>,
    batch: Vec<Connection>,
    handle: thread::JoinHandle<io::Result<ReportWriter<W>>>,
}

impl<W: Write + Send + 'static> BackgroundWriter<W> {
    /// Starts the thread that feeds `writer`.
    pub fn start(mut writer: ReportWriter<W>) -> Self {
        let (tx, rx) = mpsc::sync_channel::<Vec<Connection>>(8);
        let handle = thread::spawn(move || {
            for batch in rx {
                for c in batch {
                    writer.connection(c)?;
                }
            }
            Ok(writer)
        });
        BackgroundWriter {
            tx: Some(tx),
            batch: Vec::with_capacity(BATCH),
            handle,
        }
    }

    /// Queues a connection; an error when the writer thread has stopped.
    pub fn connection(&mut self, c: Connection) -> io::Result<()> {
        self.batch.push(c);
        if self.batch.len() >= BATCH {
            self.send()?;
        }
        Ok(())
    }

    fn send(&mut self) -> io::Result<()> {
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH));
        match &self.tx {
            Some(tx) if tx.send(batch).is_ok() => Ok(()),
            _ => Err(io::Error::other("the report writer stopped")),
        }
    }

    /// Sends what is queued, waits for the thread and returns the writer,
    /// or the error that stopped it.
    pub fn finish(mut self) -> io::Result<ReportWriter<W>> {
        let sent = if self.batch.is_empty() {
            Ok(())
        } else {
            self.send()
        };
        drop(self.tx.take());
        let writer = self
            .handle
            .join()
            .map_err(|_| io::Error::other("the report writer panicked"))??;
        sent.map(|()| writer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Ending, Format, RenderOptions, sample};

    /// A sink that refuses every write, like a full disk.
    struct Refusing;

    impl Write for Refusing {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::other("disk full"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Err(io::Error::other("disk full"))
        }
    }

    #[test]
    fn every_connection_reaches_the_report_in_order() {
        let writer = ReportWriter::new(Format::Json, RenderOptions::default(), Vec::new()).unwrap();
        let mut background = BackgroundWriter::start(writer);
        for id in 1..=(BATCH as u32 * 2 + 3) {
            let mut c = sample::echo_connection();
            c.id = id;
            background.connection(c).unwrap();
        }
        let analysis = crate::analyze::model::Analysis {
            packets: 1,
            ..Default::default()
        };
        let ending = Ending::of(&analysis);
        let out = background.finish().unwrap().finish(&ending).unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&out).unwrap();
        let ids: Vec<u64> = doc["connections"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_u64().unwrap())
            .collect();
        assert_eq!(ids, (1..=(BATCH as u64 * 2 + 3)).collect::<Vec<_>>());
    }

    #[test]
    fn a_failing_output_is_reported_not_swallowed() {
        // Text buffers until the end; JSON writes as it goes, so the thread fails.
        let writer = match ReportWriter::new(Format::Json, RenderOptions::default(), Refusing) {
            // Refused before any connection: reported too.
            Err(e) => return assert!(e.to_string().contains("disk full"), "{e}"),
            Ok(writer) => writer,
        };
        let mut background = BackgroundWriter::start(writer);
        let mut refused = false;
        for _ in 0..(BATCH * 400) {
            if background.connection(sample::echo_connection()).is_err() {
                refused = true;
                break;
            }
        }
        let finished = background.finish();
        assert!(refused || finished.is_err(), "the write error was lost");
    }
}
