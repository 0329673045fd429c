//! What each control, escape and control sequence does: the `vte::Perform` the parser calls.

use super::grid::{Grid, select_graphic_rendition};
use super::{Modes, MouseEncoding, MouseMode, Scrolled, State};

/// The state a parse changes, and where lines scrolling off the screen go.
pub struct Performer<'a, S> {
    pub state: &'a mut State,
    pub sink: &'a mut S,
    /// Set when the parser is certainly back between sequences: a sequence ended (an OSC
    /// string ended by ESC is not yet: the ESC begins `ESC \\`), or CAN or SUB cut it short.
    pub ground: &'a mut bool,
}

/// The `i`th parameter, `default` if absent or 0.
fn param(params: &vte::Params, i: usize, default: u16) -> u16 {
    match params.iter().nth(i).and_then(|p| p.first().copied()) {
        None | Some(0) => default,
        Some(n) => n,
    }
}

fn set_mode(grid: &mut Grid, modes: &mut Modes, private: bool, mode: u16, on: bool) {
    if !private {
        match mode {
            4 => grid.insert = on,
            20 => grid.newline = on,
            _ => {}
        }
        return;
    }
    let mouse = |m: MouseMode, modes: &mut Modes| {
        if on {
            modes.mouse = m;
        } else if modes.mouse == m {
            modes.mouse = MouseMode::None;
        }
    };
    let encoding = |e: MouseEncoding, modes: &mut Modes| {
        if on {
            modes.encoding = e;
        } else if modes.encoding == e {
            modes.encoding = MouseEncoding::Default;
        }
    };
    match mode {
        1 => modes.app_cursor = on,
        6 => grid.set_origin(on),
        7 => grid.autowrap = on,
        9 => mouse(MouseMode::Press, modes),
        25 => modes.cursor_hidden = !on,
        47 => grid.set_alternate(on),
        1000 => mouse(MouseMode::PressRelease, modes),
        1002 => mouse(MouseMode::ButtonMotion, modes),
        1003 => mouse(MouseMode::AnyMotion, modes),
        1005 => encoding(MouseEncoding::Utf8, modes),
        1006 => encoding(MouseEncoding::Sgr, modes),
        1047 => {
            if !on && grid.is_alternate() {
                grid.clear_alternate();
            }
            grid.set_alternate(on);
        }
        1049 if on => {
            grid.save_cursor();
            grid.set_alternate(true);
            grid.clear_alternate();
        }
        1049 => {
            grid.set_alternate(false);
            grid.restore_cursor();
        }
        2004 => modes.bracketed_paste = on,
        _ => {}
    }
}

impl<S: Scrolled> vte::Perform for Performer<'_, S> {
    #[inline]
    fn print(&mut self, c: char) {
        self.state.grid.print(c, self.sink);
    }

    fn execute(&mut self, byte: u8) {
        let grid = &mut self.state.grid;
        match byte {
            0x18 | 0x1a => *self.ground = true,
            0x07 => self.state.bells += 1,
            0x08 => grid.back(1),
            0x09 => grid.tab(),
            0x0a..=0x0c => grid.line_feed(self.sink),
            0x0d => grid.carriage_return(),
            _ => {}
        }
    }

    fn esc_dispatch(&mut self, intermediates: &[u8], _ignore: bool, byte: u8) {
        *self.ground = true;
        if !intermediates.is_empty() {
            return;
        }
        let grid = &mut self.state.grid;
        match byte {
            b'7' => grid.save_cursor(),
            b'8' => grid.restore_cursor(),
            b'=' => self.state.modes.app_keypad = true,
            b'>' => self.state.modes.app_keypad = false,
            b'D' => grid.index(self.sink),
            b'E' => {
                grid.carriage_return();
                grid.index(self.sink);
            }
            b'H' => grid.set_tab(),
            b'M' => grid.reverse_index(),
            b'c' => {
                grid.reset();
                self.state.modes = Modes::default();
            }
            _ => {}
        }
    }

    fn csi_dispatch(&mut self, params: &vte::Params, intermediates: &[u8], _: bool, c: char) {
        *self.ground = true;
        let grid = &mut self.state.grid;
        let n = param(params, 0, 1);
        match (intermediates, c) {
            ([], '@') => grid.insert_chars(n),
            ([], 'A') => grid.up(n),
            ([], 'B') => grid.down(n),
            ([], 'C') => grid.forward(n),
            ([], 'D') => grid.back(n),
            ([], 'E') => {
                grid.carriage_return();
                grid.down(n);
            }
            ([], 'F') => {
                grid.carriage_return();
                grid.up(n);
            }
            ([], 'G' | '`') => grid.set_col(n - 1),
            ([], 'H' | 'f') => grid.goto(n - 1, param(params, 1, 1) - 1),
            ([] | [b'?'], 'J') => match param(params, 0, 0) {
                3 => self.sink.clear(),
                mode => grid.erase_display(mode),
            },
            ([] | [b'?'], 'K') => grid.erase_line(param(params, 0, 0)),
            ([], 'L') => grid.insert_lines(n),
            ([], 'M') => grid.delete_lines(n),
            ([], 'P') => grid.delete_chars(n),
            ([], 'S') => grid.scroll_up(n, self.sink),
            ([], 'T') => grid.scroll_down(n),
            ([], 'X') => grid.erase_chars(n),
            ([], 'b') => grid.repeat(n, self.sink),
            ([], 'd') => grid.set_row(n - 1),
            ([], 'g') => grid.clear_tabs(param(params, 0, 0)),
            ([], 'm') => select_graphic_rendition(&mut grid.pen, params),
            ([], 'r') => {
                let rows = grid.size().0;
                grid.set_region(n, param(params, 1, rows));
            }
            ([], 's') => grid.save_cursor(),
            ([], 'u') => grid.restore_cursor(),
            ([] | [b'?'], 'h' | 'l') => {
                for mode in params.iter().filter_map(|p| p.first()) {
                    set_mode(
                        grid,
                        &mut self.state.modes,
                        !intermediates.is_empty(),
                        *mode,
                        c == 'h',
                    );
                }
            }
            // The queries a program waits for an answer to, answered as a terminal would:
            // status (DSR 5), cursor position (CPR), and what terminal this is (DA1: a VT100
            // with advanced video, as tmux says; DA2: of no particular version).
            ([], 'n') => match param(params, 0, 0) {
                5 => self.state.replies.extend_from_slice(b"\x1b[0n"),
                6 => {
                    let (row, col) = grid.reported_position();
                    let answer = format!("\x1b[{row};{col}R");
                    self.state.replies.extend_from_slice(answer.as_bytes());
                }
                _ => {}
            },
            ([], 'c') if param(params, 0, 0) == 0 => {
                self.state.replies.extend_from_slice(b"\x1b[?1;2c");
            }
            ([b'>'], 'c') if param(params, 0, 0) == 0 => {
                self.state.replies.extend_from_slice(b"\x1b[>0;0;0c");
            }
            ([b' '], 'q') => {
                if let Ok(style @ 0..=6) = u8::try_from(param(params, 0, 0)) {
                    self.state.modes.cursor_style = style;
                }
            }
            _ => {}
        }
    }

    fn osc_dispatch(&mut self, params: &[&[u8]], bell_terminated: bool) {
        *self.ground = bell_terminated;
        // A title may hold `;`: what follows the number is all of it (xterm; vt100 drops it).
        if let [b"0" | b"2", title @ ..] = params
            && !title.is_empty()
        {
            self.state.title = Some(String::from_utf8_lossy(&title.join(&b';')).into_owned());
        }
    }
}
