//! A short list kept in a map's own slot: the permit book's permits of a document (nearly
//! always one) and a phone's documents of the day (one or a few). A `Vec` per entry was an
//! allocation (room for four at its first push: 192 bytes for a permit) and one more cache
//! miss for every grant recorded.

/// None, one inline, or several in a `Vec`.
#[derive(Debug, Clone, Default)]
pub(super) enum Listed<T> {
    #[default]
    None,
    One(T),
    Many(Vec<T>),
}

impl<T> Listed<T> {
    pub(super) fn as_slice(&self) -> &[T] {
        match self {
            Listed::None => &[],
            Listed::One(p) => std::slice::from_ref(p),
            Listed::Many(v) => v,
        }
    }

    pub(super) fn as_mut_slice(&mut self) -> &mut [T] {
        match self {
            Listed::None => &mut [],
            Listed::One(p) => std::slice::from_mut(p),
            Listed::Many(v) => v,
        }
    }

    pub(super) fn push(&mut self, item: T) {
        *self = match std::mem::take(self) {
            Listed::None => Listed::One(item),
            Listed::One(first) => Listed::Many(vec![first, item]),
            Listed::Many(mut v) => {
                v.push(item);
                Listed::Many(v)
            }
        };
    }

    pub(super) fn clear(&mut self) {
        *self = Listed::None;
    }

    /// Keeps the items `keep` says to; whether any is left.
    pub(super) fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) -> bool {
        match self {
            Listed::None => {}
            Listed::One(p) => {
                if !keep(p) {
                    *self = Listed::None;
                }
            }
            Listed::Many(v) => v.retain(|p| keep(p)),
        }
        !self.as_slice().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_item_is_kept_inline_and_more_spill_to_a_list_in_order() {
        let mut l = Listed::default();
        assert!(l.as_slice().is_empty());
        l.push(1);
        assert!(matches!(l, Listed::One(1)));
        l.push(2);
        l.push(3);
        assert_eq!(l.as_slice(), &[1, 2, 3]);
        l.as_mut_slice()[0] = 9;
        assert!(l.retain(|&x| x != 2));
        assert_eq!(l.as_slice(), &[9, 3]);
        assert!(!l.retain(|_| false));
        let mut one = Listed::One(5);
        assert!(!one.retain(|&x| x != 5));
        assert!(matches!(one, Listed::None));
        one.push(6);
        one.clear();
        assert!(one.as_slice().is_empty());
    }
}
