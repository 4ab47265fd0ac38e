//! The framing shared by memcached and RESP: CR LF lines, some followed by
//! a data block whose length the line gave. One direction of either codec
//! is a [`Lines`]; [`feed`] and [`missing`] drive it, and [`Both`] holds the
//! two directions. The codec reads its lines and says where messages end;
//! the framing, the skipping of missing block bytes and the cut-short end
//! are here.

use super::{
    AppError, AppMessage, AppProtocol, Block, Direction, Line, Step, lost_sync, malformed, slot,
};

/// Where one direction stands: reading a line, or a data block.
#[derive(Debug)]
pub(crate) enum Stage {
    Line,
    Block(Block),
}

/// One direction of a line-and-block protocol.
pub(crate) trait Lines {
    /// The protocol, for errors.
    const P: AppProtocol;
    /// Longest line.
    const MAX_LINE: usize;
    /// What a data block is called in errors (`data block`, `bulk string`).
    const BLOCK: &'static str;

    /// The stage, the line being read and the message's length so far.
    fn parts(&mut self) -> (&mut Stage, &mut Line, &mut u64);

    /// A whole line is in the [`Line`]: reads it (it may start a block).
    /// Returns whether the message ended with it.
    fn on_line(&mut self, dir: Direction) -> Result<bool, AppError>;

    /// Content bytes of a block as they pass (ignored unless overridden).
    fn on_block_bytes(&mut self, _content: &[u8]) {}

    /// A block ended with its CR LF. Returns whether the message ended.
    fn on_block_end(&mut self) -> bool;

    /// The message that ended, and a fresh start for the next one.
    fn end(&mut self, dir: Direction) -> Option<AppMessage>;

    /// Bytes of the message not yet ended.
    fn held(&self) -> u64;

    /// The message the end of the stream cut (called with bytes held),
    /// before it is marked cut short; and a fresh start.
    fn cut(&mut self, dir: Direction) -> Option<AppMessage>;
}

/// Both directions of a line-and-block connection: the codec's state.
#[derive(Debug, Default)]
pub(crate) struct Both<H> {
    halves: [H; 2],
}

impl<H: Lines> Both<H> {
    /// Reads `data` of `dir` until a message ends (or the data does).
    pub(crate) fn feed(&mut self, dir: Direction, data: &[u8]) -> Result<Step, AppError> {
        feed(&mut self.halves[slot(dir)], dir, data)
    }

    /// `n` bytes of `dir` the capture lacks; see [`missing`].
    pub(crate) fn missing(
        &mut self,
        dir: Direction,
        n: u64,
    ) -> Result<Option<AppMessage>, AppError> {
        missing(&mut self.halves[slot(dir)], dir, n)
    }

    /// Whether `dir` holds bytes of a message not yet ended.
    pub(crate) fn partial(&self, dir: Direction) -> bool {
        self.halves[slot(dir)].held() > 0
    }

    /// At the end of the stream: the message of `dir` it cut short, if any.
    pub(crate) fn finish(&mut self, dir: Direction) -> Option<AppMessage> {
        let half = &mut self.halves[slot(dir)];
        if half.held() == 0 {
            return None;
        }
        let mut m = half.cut(dir)?;
        m.cut_short();
        Some(m)
    }
}

/// Reads `data` until a message ends (or the data does).
pub(crate) fn feed<H: Lines>(half: &mut H, dir: Direction, data: &[u8]) -> Result<Step, AppError> {
    let mut at = 0;
    while at < data.len() {
        let rest = &data[at..];
        let (stage, line, len) = half.parts();
        match stage {
            Stage::Line => {
                let (n, done) = line.feed(rest, H::MAX_LINE, H::P, dir, "line")?;
                at += n;
                *len += n as u64;
                if !done {
                    continue;
                }
                let ended = half.on_line(dir)?;
                half.parts().1.clear();
                if ended {
                    return Ok(Step {
                        consumed: at,
                        message: half.end(dir),
                    });
                }
            }
            Stage::Block(block) => {
                let (n, content) = block.feed(rest);
                at += n;
                *len += n as u64;
                let (complete, well_ended) = (block.complete(), block.well_ended());
                half.on_block_bytes(content);
                if complete {
                    if !well_ended {
                        let what = format!("{} not followed by CR LF", H::BLOCK);
                        return Err(malformed(H::P, dir, what));
                    }
                    *half.parts().0 = Stage::Line;
                    if half.on_block_end() {
                        return Ok(Step {
                            consumed: at,
                            message: half.end(dir),
                        });
                    }
                }
            }
        }
    }
    Ok(Step {
        consumed: at,
        message: None,
    })
}

/// `n` bytes the capture lacks: skipped inside a block (its length is
/// known), a loss of sync anywhere else.
pub(crate) fn missing<H: Lines>(
    half: &mut H,
    dir: Direction,
    n: u64,
) -> Result<Option<AppMessage>, AppError> {
    let (stage, _, len) = half.parts();
    let Stage::Block(block) = stage else {
        return Err(lost_sync(H::P, dir, n));
    };
    if !block.skip(n) {
        return Err(lost_sync(H::P, dir, n));
    }
    *len += n;
    Ok(None)
}
