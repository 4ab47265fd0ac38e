//! Drawing a [`Screen`] with ratatui: the title and counters, the
//! connection list, the ladder (or an exchange's detail), the TCP event
//! strip beside the latency sparkline, and the key line. Without colour
//! (`NO_COLOR`) only bold and reverse video tell things apart.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style as TuiStyle};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Row, Sparkline, Table, TableState};

use super::view::Screen;
use crate::report::text::Style;

/// Where each part goes on a screen of `area`.
#[derive(Debug, Clone, Copy)]
pub struct Areas {
    title: Rect,
    table: Rect,
    ladder: Rect,
    strip: Rect,
    sparkline: Rect,
    status: Rect,
}

impl Areas {
    /// The layout of `area`: the list takes about a quarter of the height,
    /// the ladder the rest of the middle.
    pub fn of(area: Rect) -> Areas {
        let table = (area.height.saturating_sub(6) / 3).clamp(3, 12);
        let [title, table, ladder, bottom, status] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Length(table),
            Constraint::Min(3),
            Constraint::Length(4),
            Constraint::Length(1),
        ])
        .areas(area);
        let [strip, sparkline] =
            Layout::horizontal([Constraint::Percentage(62), Constraint::Percentage(38)])
                .areas(bottom);
        Areas {
            title,
            table,
            ladder,
            strip,
            sparkline,
            status,
        }
    }

    /// Columns and lines the ladder has (below its title and header), and
    /// the rows the connection list shows (below its header).
    pub fn ladder_size(&self) -> (usize, usize, usize) {
        (
            usize::from(self.ladder.width),
            usize::from(self.ladder.height.saturating_sub(2)),
            usize::from(self.table.height.saturating_sub(1)),
        )
    }
}

/// Draws `screen` on the whole frame.
pub fn draw(frame: &mut Frame<'_>, screen: &Screen, color: bool) {
    let a = Areas::of(frame.area());
    let bold = TuiStyle::default().add_modifier(Modifier::BOLD);
    let reverse = TuiStyle::default().add_modifier(Modifier::REVERSED);
    // The flags first: a narrow screen cuts the counters, not them.
    let mut title = Vec::new();
    if !screen.flags.is_empty() {
        title.push(Span::styled(screen.flags.clone(), reverse));
        title.push(Span::raw(" "));
    }
    title.push(Span::styled(screen.title.clone(), bold));
    let title = Line::from(title);
    frame.render_widget(Paragraph::new(title), a.title);
    draw_table(frame, screen, a.table, color);
    draw_ladder(frame, screen, a.ladder, color);
    let strip_rows = usize::from(a.strip.height.saturating_sub(1));
    let events: Vec<Line<'_>> = screen
        .strip
        .iter()
        .skip(screen.strip.len().saturating_sub(strip_rows))
        .map(|e| Line::styled(e.clone(), style(Style::Event, color)))
        .collect();
    frame.render_widget(
        Paragraph::new(events).block(Block::new().borders(Borders::TOP).title("TCP events")),
        a.strip,
    );
    // The newest samples that fit, one per column.
    let room = usize::from(a.sparkline.width);
    let data = &screen.sparkline[screen.sparkline.len().saturating_sub(room)..];
    frame.render_widget(
        Sparkline::default()
            .block(
                Block::new()
                    .borders(Borders::TOP)
                    .title(screen.latency_title.clone()),
            )
            .data(data)
            .style(style(Style::Response, color)),
        a.sparkline,
    );
    frame.render_widget(Paragraph::new(screen.status.clone()), a.status);
}

fn draw_table(frame: &mut Frame<'_>, screen: &Screen, area: Rect, color: bool) {
    let header = Row::new([
        "#", "client", "server", "state", "exch", "c→s", "s→c", "last", "p99",
    ])
    .style(TuiStyle::default().add_modifier(Modifier::BOLD | Modifier::UNDERLINED));
    let rows = screen.rows.iter().map(|r| {
        let state = match r.status {
            "reset" | "timed out" | "evicted" => style(Style::Rst, color),
            "closing" | "closed" => style(Style::Fin, color),
            "handshake" => style(Style::Handshake, color),
            _ => TuiStyle::default(),
        };
        Row::new(vec![
            Span::raw(r.id.to_string()),
            Span::raw(r.client.clone()),
            Span::raw(r.server.clone()),
            Span::styled(r.status, state),
            Span::raw(r.exchanges.to_string()),
            Span::raw(r.up.clone()),
            Span::raw(r.down.clone()),
            Span::raw(r.last.clone()),
            Span::raw(r.p99.clone()),
        ])
    });
    let widths = [
        Constraint::Length(3),
        Constraint::Min(15),
        Constraint::Min(15),
        Constraint::Length(9),
        Constraint::Length(5),
        Constraint::Length(7),
        Constraint::Length(7),
        Constraint::Length(9),
        Constraint::Length(9),
    ];
    let table = Table::new(rows, widths)
        .header(header)
        .column_spacing(1)
        .row_highlight_style(TuiStyle::default().add_modifier(Modifier::REVERSED));
    let mut state = TableState::default().with_selected(screen.selected_row);
    frame.render_stateful_widget(table, area, &mut state);
}

fn draw_ladder(frame: &mut Frame<'_>, screen: &Screen, area: Rect, color: bool) {
    let bold = TuiStyle::default().add_modifier(Modifier::BOLD);
    let mut lines = vec![Line::styled(screen.ladder_title.clone(), bold)];
    if !screen.detail && !screen.ladder.is_empty() {
        lines.push(Line::styled(screen.ladder_header.clone(), bold));
    }
    lines.extend(screen.ladder.iter().map(|l| {
        Line::from(vec![
            Span::raw(l.time.clone()),
            Span::styled(l.body.clone(), style(l.style, color)),
        ])
    }));
    frame.render_widget(Paragraph::new(lines), area);
}

/// The look of a piece of the ladder: the text report's colours, or
/// without colour only bold for what matters most.
fn style(s: Style, color: bool) -> TuiStyle {
    let plain = TuiStyle::default();
    if !color {
        return match s {
            Style::Bold | Style::Rst => plain.add_modifier(Modifier::BOLD),
            _ => plain,
        };
    }
    match s {
        Style::Plain => plain,
        Style::Bold => plain.add_modifier(Modifier::BOLD),
        Style::Handshake => plain.fg(Color::Cyan),
        Style::Request => plain.fg(Color::Green),
        Style::Response => plain.fg(Color::Blue),
        Style::Fin => plain.fg(Color::Yellow),
        Style::Rst => plain.fg(Color::Red),
        Style::Note => plain.fg(Color::Magenta),
        Style::Event => plain.fg(Color::LightRed),
    }
}

#[cfg(test)]
mod tests;
