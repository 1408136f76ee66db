//! The SVG that plotters draws into: a [`DrawingBackend`] that writes plain SVG elements and
//! lets a figure wrap the elements of one mark (a CI whisker, a trial's dot, a call's bar)
//! in a `<g class="…">` with a `<title>`, so a reader can hover a mark, a stylesheet can
//! address it and a test can count the marks.
//!
//! Deterministic by construction: coordinates are integers, colours are written as hex,
//! nothing carries an id or a time, so the same figure is the same bytes.

use std::cell::RefCell;
use std::fmt::Write;
use std::rc::Rc;

use plotters::backend::DrawingBackend;
use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingErrorKind, FontStyle,
    FontTransform,
};

/// The font every figure names; the viewer picks the first it has.
pub const FONT: &str = "Helvetica, Arial, sans-serif";

/// The SVG being written, shared by the backend and the figure that opens mark groups.
#[derive(Clone, Default)]
pub struct Sheet(Rc<RefCell<String>>);

impl Sheet {
    /// Opens a mark: a group with a class and a hover title, closed by [`Sheet::close`].
    pub fn open(&self, class: &str, title: &str) {
        let mut out = self.0.borrow_mut();
        let _ = write!(out, r#"<g class="{}"><title>"#, escape(class));
        out.push_str(&escape(title));
        out.push_str("</title>\n");
    }

    /// Opens a group with a class and no title (a layer: the axes, a legend).
    pub fn layer(&self, class: &str) {
        let _ = writeln!(self.0.borrow_mut(), r#"<g class="{}">"#, escape(class));
    }

    /// Closes the group opened last.
    pub fn close(&self) {
        self.0.borrow_mut().push_str("</g>\n");
    }

    fn push(&self, s: &str) {
        self.0.borrow_mut().push_str(s);
    }

    /// The SVG written so far.
    pub fn take(&self) -> String {
        std::mem::take(&mut self.0.borrow_mut())
    }
}

/// Escapes text for XML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// The plotters backend writing into a [`Sheet`].
pub struct Canvas {
    size: (u32, u32),
    sheet: Sheet,
}

impl Canvas {
    /// A canvas of `size` pixels writing into `sheet`.
    pub fn new(size: (u32, u32), sheet: Sheet) -> Canvas {
        Canvas { size, sheet }
    }
}

/// Drawing into a string cannot fail; plotters asks for an error type all the same.
#[derive(Debug)]
pub struct Never;

impl std::fmt::Display for Never {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("unreachable")
    }
}

impl std::error::Error for Never {}

type Drawn = Result<(), DrawingErrorKind<Never>>;

fn color(c: BackendColor) -> String {
    let (r, g, b) = c.rgb;
    format!("#{r:02X}{g:02X}{b:02X}")
}

/// ` opacity="…"` when the colour is not opaque; a fixed number of decimals keeps it stable.
fn opacity(attr: &str, c: BackendColor) -> String {
    if c.alpha >= 1.0 {
        String::new()
    } else {
        format!(r#" {attr}="{:.2}""#, c.alpha)
    }
}

/// The paint attributes of a shape: filled with the style's colour, or outlined in it and
/// filled with `inside`.
fn paint<S: BackendStyle>(s: &S, fill: bool, inside: &str) -> String {
    let c = s.color();
    if fill {
        format!(r#"fill="{}"{}"#, color(c), opacity("fill-opacity", c))
    } else {
        format!(
            r#"fill="{inside}" stroke="{}" stroke-width="{}"{}"#,
            color(c),
            s.stroke_width(),
            opacity("stroke-opacity", c)
        )
    }
}

fn points(path: impl IntoIterator<Item = BackendCoord>) -> String {
    let mut s = String::new();
    for (x, y) in path {
        if !s.is_empty() {
            s.push(' ');
        }
        let _ = write!(s, "{x},{y}");
    }
    s
}

/// Width of `text` at `size` px in a Helvetica-like face: digits and most lower-case
/// letters are about 0.55 em, narrow and wide glyphs are counted as such. An estimate (the
/// viewer chooses the font), good enough to keep labels clear of each other.
pub fn text_width(text: &str, size: f64) -> f64 {
    let em: f64 = text
        .chars()
        .map(|c| match c {
            'i' | 'j' | 'l' | '.' | ',' | ':' | ';' | '\'' | '|' | '!' | ' ' => 0.28,
            'f' | 't' | 'r' | '(' | ')' | '[' | ']' | '/' | '-' => 0.36,
            'm' | 'w' | 'M' | 'W' | '%' | '@' => 0.85,
            'A'..='Z' | '+' | '=' | '~' | '<' | '>' => 0.67,
            '·' | '×' | '≤' | '≥' | '–' | '—' => 0.6,
            _ => 0.56,
        })
        .sum();
    em * size
}

impl DrawingBackend for Canvas {
    type ErrorType = Never;

    fn get_size(&self) -> (u32, u32) {
        self.size
    }

    fn ensure_prepared(&mut self) -> Drawn {
        Ok(())
    }

    fn present(&mut self) -> Drawn {
        Ok(())
    }

    fn draw_pixel(&mut self, point: BackendCoord, c: BackendColor) -> Drawn {
        if c.alpha > 0.0 {
            self.sheet.push(&format!(
                r#"<rect x="{}" y="{}" width="1" height="1" fill="{}"{}/>"#,
                point.0,
                point.1,
                color(c),
                opacity("fill-opacity", c)
            ));
            self.sheet.push("\n");
        }
        Ok(())
    }

    fn draw_line<S: BackendStyle>(&mut self, from: BackendCoord, to: BackendCoord, s: &S) -> Drawn {
        let c = s.color();
        if c.alpha > 0.0 {
            self.sheet.push(&format!(
                "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{}\" stroke-width=\"{}\"{}/>\n",
                from.0,
                from.1,
                to.0,
                to.1,
                color(c),
                s.stroke_width(),
                opacity("stroke-opacity", c)
            ));
        }
        Ok(())
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        s: &S,
        fill: bool,
    ) -> Drawn {
        let c = s.color();
        if c.alpha > 0.0 {
            let paint = paint(s, fill, "none");
            self.sheet.push(&format!(
                "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" {paint}/>\n",
                upper_left.0,
                upper_left.1,
                bottom_right.0 - upper_left.0,
                bottom_right.1 - upper_left.1,
            ));
        }
        Ok(())
    }

    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        s: &S,
    ) -> Drawn {
        let c = s.color();
        if c.alpha > 0.0 {
            self.sheet.push(&format!(
                "<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"{}\" stroke-linejoin=\"round\"{}/>\n",
                points(path),
                color(c),
                s.stroke_width(),
                opacity("stroke-opacity", c)
            ));
        }
        Ok(())
    }

    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        s: &S,
        fill: bool,
    ) -> Drawn {
        let c = s.color();
        if c.alpha > 0.0 {
            // An open circle is white inside, so what it sits on does not show through.
            let paint = paint(s, fill, "#FFFFFF");
            self.sheet.push(&format!(
                "<circle cx=\"{}\" cy=\"{}\" r=\"{radius}\" {paint}/>\n",
                center.0, center.1
            ));
        }
        Ok(())
    }

    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        s: &S,
    ) -> Drawn {
        let c = s.color();
        if c.alpha > 0.0 {
            self.sheet.push(&format!(
                "<polygon points=\"{}\" fill=\"{}\"{}/>\n",
                points(vert),
                color(c),
                opacity("fill-opacity", c)
            ));
        }
        Ok(())
    }

    fn draw_text<T: BackendTextStyle>(&mut self, text: &str, s: &T, pos: BackendCoord) -> Drawn {
        let c = s.color();
        if c.alpha == 0.0 || text.is_empty() {
            return Ok(());
        }
        let anchor = match s.anchor().h_pos {
            HPos::Left => "start",
            HPos::Right => "end",
            HPos::Center => "middle",
        };
        // Baselines as offsets: `dominant-baseline` is not rendered alike everywhere.
        let dy = match s.anchor().v_pos {
            VPos::Top => "0.8em",
            VPos::Center => "0.35em",
            VPos::Bottom => "-0.2em",
        };
        let mut attrs = format!(
            r#"x="{}" y="{}" dy="{dy}" text-anchor="{anchor}" font-size="{}" fill="{}""#,
            pos.0,
            pos.1,
            s.size().round(),
            color(c)
        );
        match s.style() {
            FontStyle::Bold => attrs.push_str(r#" font-weight="bold""#),
            FontStyle::Italic | FontStyle::Oblique => attrs.push_str(r#" font-style="italic""#),
            FontStyle::Normal => {}
        }
        let angle = match s.transform() {
            FontTransform::Rotate90 => 90,
            FontTransform::Rotate180 => 180,
            FontTransform::Rotate270 => 270,
            FontTransform::None => 0,
        };
        if angle != 0 {
            let _ = write!(attrs, r#" transform="rotate({angle},{},{})""#, pos.0, pos.1);
        }
        self.sheet
            .push(&format!("<text {attrs}>{}</text>\n", escape(text)));
        Ok(())
    }

    fn estimate_text_size<T: BackendTextStyle>(
        &self,
        text: &str,
        s: &T,
    ) -> Result<(u32, u32), DrawingErrorKind<Never>> {
        let size = s.size();
        Ok((text_width(text, size).ceil() as u32, size.ceil() as u32))
    }

    fn blit_bitmap(
        &mut self,
        _pos: BackendCoord,
        _size: (u32, u32),
        _src: &[u8],
    ) -> Result<(), DrawingErrorKind<Never>> {
        Ok(())
    }
}
