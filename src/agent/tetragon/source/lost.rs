//! How many rotated files lumberjack deleted before the agent could read them, when the file
//! the agent was reading is itself gone from the folder (it fell more than MaxBackups
//! rotations behind: stopped, starved of CPU).
//!
//! A deleted file leaves no trace, so their number cannot be read off the folder; it is
//! estimated from the time they covered. lumberjack writes one file after the other: the file
//! after a rotated one is created the moment it is renamed, so the deleted files filled the
//! time between the last write to the file the agent finished and the creation of the oldest
//! file left. Divided by the median lifetime of the files left, that is their number: exact
//! while Tetragon writes at a steady rate (its export under kovenant's policies rarely pauses),
//! too high when it was idle right before the deleted files, which the folder cannot tell.

/// One file left: the time in its backup name (its rotation) and its creation time, where
/// known (ns since the epoch). The current file has no rotation time yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Left {
    pub rotated: Option<i64>,
    pub created: Option<i64>,
}

/// `end`: the last write to the file the agent finished; `own_life`: that file's lifetime (used
/// when the files left give none); `left`: the files after it, oldest first.
pub fn estimate(end: i64, own_life: Option<i64>, left: &[Left]) -> u64 {
    let rotated: Vec<i64> = left.iter().filter_map(|l| l.rotated).collect();
    let mut lives: Vec<i64> = rotated.windows(2).map(|w| w[1] - w[0]).collect();
    lives.extend(left.iter().filter_map(|l| Some(l.rotated? - l.created?)));
    lives.retain(|l| *l > 0);
    if lives.is_empty() {
        lives.extend(own_life.filter(|l| *l > 0));
    }
    lives.sort_unstable();
    let Some(&life) = lives.get(lives.len() / 2) else {
        return 0;
    };
    let Some(first) = left.first() else { return 0 };
    let start = match (first.created, first.rotated) {
        (Some(c), _) => c,
        // Gzipped: the file's creation time went with its plain copy.
        (None, Some(r)) => r - life,
        (None, None) => return 0,
    };
    let gap = start - end;
    if gap <= 0 {
        return 0;
    }
    u64::try_from((gap + life / 2) / life).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    /// Files of `life` seconds back to back from t=0 (file 0 the finished one), of which
    /// `lost` after file 0 are gone; `gz`: the ones left have no creation time.
    fn chain(life: i64, lost: usize, left: usize, gz: bool) -> (i64, Vec<Left>) {
        let end = life * S - S / 1000;
        let files = (1 + lost..=1 + lost + left)
            .map(|i| Left {
                rotated: (i < 1 + lost + left).then_some((i as i64 + 1) * life * S),
                created: (!gz || i == 1 + lost + left).then_some(i as i64 * life * S + 5_000),
            })
            .collect();
        (end, files)
    }

    #[test]
    fn counts_the_files_that_fit_in_the_gap() {
        for lost in 0..4 {
            for left in 0..3 {
                for gz in [false, true] {
                    let (end, files) = chain(10, lost, left, gz);
                    assert_eq!(
                        estimate(end, Some(10 * S), &files),
                        lost as u64,
                        "lost {lost}, left {left}, gz {gz}"
                    );
                }
            }
        }
    }

    #[test]
    fn uneven_lifetimes_round_to_the_nearest() {
        let left = [
            Left {
                rotated: Some(40 * S),
                created: Some(32 * S),
            },
            Left {
                rotated: None,
                created: Some(40 * S),
            },
        ];
        // 8 s files; 10 s to 32 s is 22 s: about three files of 8 s.
        assert_eq!(estimate(10 * S, None, &left), 3);
        // Nothing between the end and the next file: nothing lost.
        assert_eq!(estimate(32 * S, None, &left), 0);
        assert_eq!(estimate(33 * S, None, &left), 0);
    }

    #[test]
    fn without_a_lifetime_nothing_is_claimed() {
        let left = [Left {
            rotated: None,
            created: Some(100 * S),
        }];
        assert_eq!(estimate(0, None, &left), 0);
        assert_eq!(estimate(0, Some(10 * S), &left), 10);
        assert_eq!(estimate(0, Some(10 * S), &[]), 0);
    }
}
