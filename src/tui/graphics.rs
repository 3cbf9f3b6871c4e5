//! Real pixels for photos and heatmaps where the terminal can show them.
//!
//! Half blocks (see `halfblock.rs`) work everywhere but are coarse; kitty,
//! sixel and iTerm2 terminals can show the actual photo. ratatui-image's
//! `Picker` detects the protocol (or `--graphics` forces one), and each image
//! is encoded once per (sample, image, cell size) and kept, because encoding
//! a sixel or kitty image on every frame would make the UI sluggish over SSH.

use std::collections::HashMap;
use std::str::FromStr;

use image::DynamicImage;
use ratatui::buffer::Buffer;
use ratatui::widgets::StatefulWidget;
use ratatui_image::picker::{Picker, ProtocolType};
use ratatui_image::protocol::StatefulProtocol;
use ratatui_image::{Resize, StatefulImage};

use crate::tui::error::TuiError;
use crate::tui::halfblock;
use crate::tui::panes::ImageRegion;
use crate::tui::state::{AppState, ImageKey, ImageKind};

/// How images are drawn (`--graphics`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GraphicsMode {
    /// Ask the terminal; fall back to half blocks.
    #[default]
    Auto,
    Kitty,
    Sixel,
    Iterm2,
    /// Unicode half blocks only (works in any colour terminal).
    Halfblocks,
}

impl FromStr for GraphicsMode {
    type Err = TuiError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(GraphicsMode::Auto),
            "kitty" => Ok(GraphicsMode::Kitty),
            "sixel" => Ok(GraphicsMode::Sixel),
            "iterm2" | "iterm" => Ok(GraphicsMode::Iterm2),
            "halfblocks" | "halfblock" | "blocks" | "none" => Ok(GraphicsMode::Halfblocks),
            other => Err(TuiError::Graphics(format!(
                "unknown graphics mode {other:?} (auto, kitty, sixel, iterm2, halfblocks)"
            ))),
        }
    }
}

impl std::fmt::Display for GraphicsMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            GraphicsMode::Auto => "auto",
            GraphicsMode::Kitty => "kitty",
            GraphicsMode::Sixel => "sixel",
            GraphicsMode::Iterm2 => "iterm2",
            GraphicsMode::Halfblocks => "halfblocks",
        })
    }
}

/// Most protocol states kept; past this the cache starts over.
const MAX_CACHED: usize = 48;

/// Draws images with a terminal graphics protocol over their half-block cells.
pub struct ProtocolRenderer {
    picker: Picker,
    cache: HashMap<(ImageKey, u16, u16), StatefulProtocol>,
}

impl ProtocolRenderer {
    /// Picks the protocol. Must run after the alternate screen is entered and
    /// before input is read (detection talks to the terminal). Returns `None`
    /// for half blocks, which the panes draw themselves.
    pub fn detect(mode: GraphicsMode) -> Option<Self> {
        let wanted = match mode {
            GraphicsMode::Halfblocks => return None,
            GraphicsMode::Auto => None,
            GraphicsMode::Kitty => Some(ProtocolType::Kitty),
            GraphicsMode::Sixel => Some(ProtocolType::Sixel),
            GraphicsMode::Iterm2 => Some(ProtocolType::Iterm2),
        };
        let mut picker = match Picker::from_query_stdio() {
            Ok(p) => p,
            // No answer (e.g. tmux without passthrough): a forced protocol
            // still works with the default font size guess; auto gives up.
            Err(_) if wanted.is_some() => Picker::halfblocks(),
            Err(_) => return None,
        };
        if let Some(t) = wanted {
            picker.set_protocol_type(t);
        }
        if picker.protocol_type() == ProtocolType::Halfblocks {
            return None;
        }
        Some(ProtocolRenderer {
            picker,
            cache: HashMap::new(),
        })
    }

    pub fn protocol_name(&self) -> String {
        format!("{:?}", self.picker.protocol_type()).to_lowercase()
    }

    /// Draws every region with the protocol, encoding only new (image, size) pairs.
    pub fn draw(&mut self, state: &AppState, regions: &[ImageRegion], buf: &mut Buffer) {
        for region in regions {
            let key = (region.key.clone(), region.rect.width, region.rect.height);
            if !self.cache.contains_key(&key) {
                let Some(img) = source_image(state, &region.key) else {
                    continue;
                };
                if self.cache.len() >= MAX_CACHED {
                    self.cache.clear();
                }
                self.cache
                    .insert(key.clone(), self.picker.new_resize_protocol(img));
            }
            if let Some(proto) = self.cache.get_mut(&key) {
                StatefulImage::default().resize(Resize::Scale(None)).render(
                    region.rect,
                    buf,
                    proto,
                );
            }
        }
    }

    /// Drops the states of a sample whose images changed (e.g. a new heatmap).
    pub fn forget_sample(&mut self, sample_id: &str) {
        self.cache.retain(|(k, _, _), _| k.sample_id != sample_id);
    }
}

/// The full-resolution image behind an on-screen region.
pub fn source_image(state: &AppState, key: &ImageKey) -> Option<DynamicImage> {
    match &key.kind {
        ImageKind::Photo => state
            .photo(&key.sample_id)
            .map(|p| DynamicImage::ImageRgb8(p.clone())),
        ImageKind::Heatmap(method) => state
            .heatmap(&key.sample_id, method)
            .and_then(halfblock::heatmap_image)
            .map(DynamicImage::ImageRgb8),
    }
}
