//! The sample list: filtering, searching, sorting and the selection.

use super::*;

impl AppState {
    // ----- the list --------------------------------------------------------

    /// Whether a row passes the current filter and search.
    pub fn is_visible(&self, row: &SampleRow) -> bool {
        let passes = match self.filter {
            Filter::All => true,
            Filter::Misclassified => row.prediction.as_ref().is_some_and(|p| !p.correct()),
            Filter::Uncertain => row.prediction.as_ref().is_some_and(|p| {
                let ensemble_unsure = p
                    .uncertainty
                    .is_some_and(|u| u.members > 1 && u.is_uncertain());
                ensemble_unsure || (p.probability - 0.5).abs() <= self.uncertain_band
            }),
            Filter::LowAgreement => row.agreement.is_some_and(|a| a < self.agreement_threshold),
            Filter::SetOfTwo => row
                .prediction
                .as_ref()
                .is_some_and(|p| p.set_of_two_or_more()),
        };
        let in_split = self
            .split_filter
            .as_ref()
            .is_none_or(|s| row.prediction.as_ref().is_some_and(|p| &p.split == s));
        passes
            && in_split
            && (self.query.is_empty() || row.id.to_lowercase().contains(&self.query.to_lowercase()))
    }

    /// Indices into [`AppState::rows`] of the visible rows, in display order.
    pub fn visible(&self) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..self.rows.len())
            .filter(|&i| self.is_visible(&self.rows[i]))
            .collect();
        let rows = &self.rows;
        match self.sort {
            SortKey::Name => idx.sort_by(|&a, &b| rows[a].id.cmp(&rows[b].id)),
            SortKey::Probability => idx.sort_by(|&a, &b| {
                let pa = rows[a].prediction.as_ref().map(|p| p.probability);
                let pb = rows[b].prediction.as_ref().map(|p| p.probability);
                none_last(pa, pb, true).then_with(|| rows[a].id.cmp(&rows[b].id))
            }),
            SortKey::Agreement => idx.sort_by(|&a, &b| {
                none_last(rows[a].agreement, rows[b].agreement, false)
                    .then_with(|| rows[a].id.cmp(&rows[b].id))
            }),
            SortKey::Uncertainty => idx.sort_by(|&a, &b| {
                let h = |i: usize| {
                    rows[i]
                        .prediction
                        .as_ref()
                        .and_then(|p| p.uncertainty)
                        .map(|u| u.predictive_entropy)
                };
                none_last(h(a), h(b), true).then_with(|| rows[a].id.cmp(&rows[b].id))
            }),
        }
        idx
    }

    /// The split filter after `current`: the splits present in the
    /// predictions, in pipeline order (others by name), then all.
    pub fn next_split(&self, current: Option<&str>) -> Option<String> {
        const ORDER: [&str; 4] = ["train", "val", "test", "out-of-fold"];
        let mut splits: Vec<&str> = self
            .rows
            .iter()
            .filter_map(|r| r.prediction.as_ref().map(|p| p.split.as_str()))
            .collect();
        splits.sort_by_key(|s| (ORDER.iter().position(|o| o == s).unwrap_or(ORDER.len()), *s));
        splits.dedup();
        let next = match current {
            None => splits.first(),
            Some(c) => splits
                .iter()
                .position(|s| *s == c)
                .and_then(|i| splits.get(i + 1)),
        };
        next.map(|s| s.to_string())
    }

    /// Position of the selection within [`AppState::visible`].
    pub fn selected_position(&self, visible: &[usize]) -> Option<usize> {
        let id = self.selected.as_deref()?;
        visible.iter().position(|&i| self.rows[i].id == id)
    }

    /// Keeps the selection on a visible row (the first one if it was hidden).
    pub(crate) fn ensure_selection(&mut self) {
        let visible = self.visible();
        if self.selected_position(&visible).is_none() {
            self.selected = visible.first().map(|&i| self.rows[i].id.clone());
        }
    }

    /// Moves the selection by `delta` visible rows (clamped).
    pub(crate) fn move_selection(&mut self, delta: isize) {
        let visible = self.visible();
        if visible.is_empty() {
            self.selected = None;
            return;
        }
        let pos = self.selected_position(&visible).unwrap_or(0) as isize;
        let new = (pos + delta).clamp(0, visible.len() as isize - 1) as usize;
        self.selected = Some(self.rows[visible[new]].id.clone());
    }

    /// Selects the `n`-th visible row (mouse click).
    pub(crate) fn select_visible(&mut self, n: usize) {
        let visible = self.visible();
        if let Some(&i) = visible.get(n) {
            self.selected = Some(self.rows[i].id.clone());
        }
    }
}

/// Orders present values (ascending, or descending when `descending`)
/// before missing ones.
fn none_last(a: Option<f64>, b: Option<f64>, descending: bool) -> std::cmp::Ordering {
    use std::cmp::Ordering::*;
    match (a, b) {
        (Some(x), Some(y)) if descending => y.partial_cmp(&x).unwrap_or(Equal),
        (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(Equal),
        (Some(_), None) => Less,
        (None, Some(_)) => Greater,
        (None, None) => Equal,
    }
}
