//! Bounded fan-out: a function over a list on a few threads, answers in the list's order.
//! The charm uses it for independent hook-tool reads and for long lists of LXD changes.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Applies `f` to every item with at most `max` calls running at once; the results come back
/// in `items`' order. Workers take the next item as they finish one, so a slow item does not
/// hold back the rest. A panic in `f` is raised again here.
pub(crate) fn map_bounded<T: Sync, R: Send>(items: &[T], max: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let workers = items.len().min(max);
    if workers <= 1 {
        return items.iter().map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let mut slots: Vec<Option<R>> = (0..items.len()).map(|_| None).collect();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(i) else { break };
                        done.push((i, f(item)));
                    }
                    done
                })
            })
            .collect();
        for h in handles {
            for (i, r) in h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)) {
                slots[i] = Some(r);
            }
        }
    });
    // Every index was taken by exactly one worker, and a worker stops only past the end.
    slots.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn answers_come_in_the_order_of_the_items() {
        let items: Vec<u64> = (0..50).collect();
        // Early items are the slowest, so workers finish out of order.
        let out = map_bounded(&items, 4, |i| {
            std::thread::sleep(Duration::from_micros(50 * (50 - i)));
            i * 2
        });
        assert_eq!(out, items.iter().map(|i| i * 2).collect::<Vec<_>>());
    }

    #[test]
    fn no_more_than_max_run_at_once() {
        let running = AtomicUsize::new(0);
        let peak = AtomicUsize::new(0);
        map_bounded(&[(); 40], 3, |_| {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(2));
            running.fetch_sub(1, Ordering::SeqCst);
        });
        let peak = peak.load(Ordering::SeqCst);
        assert!((2..=3).contains(&peak), "peak {peak}");
    }

    #[test]
    fn one_item_or_one_worker_runs_on_the_calling_thread() {
        let me = std::thread::current().id();
        assert_eq!(map_bounded(&[1], 8, |_| std::thread::current().id()), [me]);
        assert_eq!(map_bounded(&[1, 2, 3], 1, |_| std::thread::current().id()), [me, me, me]);
    }
}
