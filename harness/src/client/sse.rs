//! Server-Sent Events parsing, incremental and bounded.

use serde::{Deserialize, Serialize};

/// One SSE event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
    pub retry: Option<u64>,
}

/// Feeds bytes in, takes complete events out. Lines longer than `max_line` are cut (the
/// server is hostile until proven otherwise).
#[derive(Debug, Default)]
pub struct SseParser {
    buffer: Vec<u8>,
    current: SseEvent,
    has_fields: bool,
    max_line: usize,
    /// The line waiting in `buffer` was cut to `max_line`: its real end (and any CR before its
    /// terminator) is gone, so the byte at the cut must not be taken for that CR.
    line_cut: bool,
}

impl SseParser {
    pub fn new(max_line: usize) -> Self {
        Self { max_line, ..Self::default() }
    }

    /// Adds bytes; returns the events completed by them.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<SseEvent> {
        let mut events = Vec::new();
        self.buffer.extend_from_slice(bytes);
        while let Some(pos) = self.buffer.iter().position(|&b| b == b'\n') {
            let mut line: Vec<u8> = self.buffer.drain(..=pos).collect();
            line.pop();
            if !std::mem::take(&mut self.line_cut) && line.last() == Some(&b'\r') {
                line.pop();
            }
            line.truncate(self.max_line);
            if let Some(event) = self.line(&String::from_utf8_lossy(&line)) {
                events.push(event);
            }
        }
        if self.buffer.len() > self.max_line {
            // An endless line: keep its start, drop the rest as it arrives.
            self.buffer.truncate(self.max_line);
            self.line_cut = true;
        }
        events
    }

    fn line(&mut self, line: &str) -> Option<SseEvent> {
        if line.is_empty() {
            if !self.has_fields {
                return None;
            }
            self.has_fields = false;
            let mut event = std::mem::take(&mut self.current);
            if event.data.ends_with('\n') {
                event.data.pop();
            }
            return Some(event);
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        self.has_fields = true;
        match field {
            "data" => {
                self.current.data.push_str(value);
                self.current.data.push('\n');
            }
            "id" => self.current.id = Some(value.to_owned()),
            "event" => self.current.event = Some(value.to_owned()),
            "retry" => self.current.retry = value.parse().ok(),
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_events_split_across_chunks() {
        let mut p = SseParser::new(1024);
        assert!(p.push(b"id: 1\ndata: \n").is_empty());
        let events = p.push(b"\nid: 2\r\nevent: message\r\ndata: {\"a\":1}\r\n\r\n: comment\n\n");
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].id.as_deref(), Some("1"));
        assert_eq!(events[0].data, "");
        assert_eq!(events[1].data, "{\"a\":1}");
        assert_eq!(events[1].event.as_deref(), Some("message"));
    }

    #[test]
    fn endless_lines_stay_bounded() {
        let mut p = SseParser::new(16);
        for _ in 0..1000 {
            p.push(&[b'x'; 1024]);
        }
        assert!(p.buffer.len() <= 16);
    }
}
