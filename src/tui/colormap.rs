//! Heatmap colours in the terminal: the shared viridis table
//! (`explain::colormap`) as ratatui colours.

use ratatui::style::Color;

pub use crate::explain::colormap::viridis;

/// [`viridis`] as a terminal colour.
pub fn viridis_color(value: f32) -> Color {
    let [r, g, b] = viridis(value);
    Color::Rgb(r, g, b)
}
