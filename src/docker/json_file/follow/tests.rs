//! The follower against files written the way Docker writes them: lines
//! appended, torn mid-line, rotated by rename, truncated.

use std::io::Write;
use std::sync::Mutex;

use super::*;
use crate::docker::logs::LogStream;

const BASE: i64 = 1_796_040_000_000_000_000; // 2026-11-30T12:00:00Z
const SEC: i64 = 1_000_000_000;

/// A Docker json-file line for `content` printed at BASE + `offset`.
fn line(offset: i64, stream: &str, content: &str) -> String {
    let nanos = BASE + offset;
    format!(
        "{{\"log\":{},\"stream\":\"{stream}\",\"time\":\"2026-11-30T12:{:02}:{:02}.{:09}Z\"}}\n",
        serde_json::to_string(content).unwrap(),
        (nanos - BASE) / SEC / 60,
        (nanos - BASE) / SEC % 60,
        nanos % SEC
    )
}

fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// Docker's rotation: `.1` → `.2`, the file → `.1`, a new file.
fn rotate(path: &Path) {
    if rotated(path, 1).exists() {
        std::fs::rename(rotated(path, 1), rotated(path, 2)).unwrap();
    }
    std::fs::rename(path, rotated(path, 1)).unwrap();
    File::create(path).unwrap();
}

fn fast() -> Timing {
    Timing {
        poll_min: Duration::from_millis(2),
        poll_max: Duration::from_millis(10),
        idle: Duration::from_millis(10),
        stop_check: Duration::from_millis(20),
    }
}

type State = Arc<Mutex<RunState>>;

fn follower(path: &Path, max_file: u32, since: Option<i64>, state: &State) -> Follower {
    follower_with(path, max_file, since, state, fast(), None).0
}

fn follower_with(
    path: &Path,
    max_file: u32,
    since: Option<i64>,
    state: &State,
    timing: Timing,
    watch: Option<FileWatch>,
) -> (Follower, Arc<Notify>) {
    let files = open_files(path, max_file, since).unwrap();
    let state = state.clone();
    let check: StopCheck = Box::new(move || {
        let s = *state.lock().unwrap();
        Box::pin(async move { Ok(s) })
    });
    let wake = Arc::new(Notify::new());
    let f = Follower::new(
        path.to_path_buf(),
        max_file,
        files,
        since,
        check,
        Wake {
            stopped: wake.clone(),
            files: watch,
        },
        timing,
    );
    (f.unwrap(), wake)
}

/// One CRI line the follower made.
#[derive(Debug)]
struct Line {
    stream: LogStream,
    nanos: i64,
    timestamp: Vec<u8>,
    tag: u8,
    content: Vec<u8>,
}

fn taken(lines: &CriLines) -> Vec<Line> {
    lines
        .lines()
        .map(|(nanos, line)| {
            // `<timestamp> <stream> <tag> <content>\n`
            let line = line.strip_suffix(b"\n").unwrap();
            let space = line.iter().position(|b| *b == b' ').unwrap();
            let rest = &line[space + 1..];
            Line {
                timestamp: line[..space].to_vec(),
                stream: match &rest[..6] {
                    b"stdout" => LogStream::Stdout,
                    _ => LogStream::Stderr,
                },
                nanos,
                tag: rest[7],
                content: rest[9..].to_vec(),
            }
        })
        .collect()
}

/// The follower's next batch.
async fn batch(f: &mut Follower) -> Option<Result<Vec<Line>>> {
    let mut lines = CriLines::new();
    let got = f.next_batch(&mut lines).await?;
    Some(got.map(|()| taken(&lines)))
}

/// Everything the follower sends until it ends.
async fn drain(mut f: Follower) -> Vec<Line> {
    let mut all = Vec::new();
    let run = async {
        while let Some(lines) = batch(&mut f).await {
            all.extend(lines.unwrap());
        }
    };
    tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("the follower ends once the container stopped");
    all
}

/// Each line's content, with the `\n` its `F` tag stands for.
fn texts(lines: &[Line]) -> Vec<String> {
    lines.iter().map(text).collect()
}

fn text(line: &Line) -> String {
    let mut text = String::from_utf8(line.content.clone()).unwrap();
    if line.tag == b'F' {
        text.push('\n');
    }
    text
}

#[tokio::test]
async fn rotated_files_oldest_first_then_the_current_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c-json.log");
    append(&path, &line(0, "stdout", "one\n"));
    rotate(&path);
    append(
        &path,
        &(line(SEC, "stderr", "two\n") + &line(SEC, "stdout", "three\n")),
    );
    rotate(&path);
    append(&path, &line(2 * SEC, "stdout", "four\n"));
    let state = Arc::new(Mutex::new(RunState::Stopped));
    let got = drain(follower(&path, 3, None, &state)).await;
    assert_eq!(texts(&got), ["one\n", "two\n", "three\n", "four\n"]);
    assert_eq!(got[1].stream, LogStream::Stderr);
    assert_eq!(got[1].nanos, BASE + SEC);
    assert_eq!(&got[1].timestamp[..], b"2026-11-30T12:00:01.000000000Z");
}

#[tokio::test]
async fn since_starts_in_the_newest_file_that_can_hold_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c-json.log");
    for (file, base) in [(0, 0), (1, 10 * SEC), (2, 20 * SEC)] {
        if file > 0 {
            rotate(&path);
        }
        for i in 0..3 {
            append(
                &path,
                &line(base + i * SEC, "stdout", &format!("{}\n", base / SEC + i)),
            );
        }
    }
    // The oldest file cannot hold 11.5 s (the middle one starts over a
    // second earlier): it is not kept open.
    let since = BASE + 11 * SEC + SEC / 2;
    assert_eq!(open_files(&path, 3, Some(since)).unwrap().len(), 2);
    // 10.5 s: a line stamped 10.5 s could still follow one stamped 9.9 s.
    assert_eq!(
        open_files(&path, 3, Some(BASE + 10 * SEC + SEC / 2))
            .unwrap()
            .len(),
        3
    );
    assert_eq!(open_files(&path, 3, None).unwrap().len(), 3);
    let state = Arc::new(Mutex::new(RunState::Stopped));
    let got = drain(follower(&path, 3, Some(since), &state)).await;
    assert_eq!(texts(&got), ["12\n", "20\n", "21\n", "22\n"]);
    // Inclusive, and later lines stamped earlier (stderr) still come.
    append(&path, &line(5 * SEC, "stderr", "late\n"));
    let got = drain(follower(&path, 3, Some(BASE + 21 * SEC), &state)).await;
    assert_eq!(texts(&got), ["21\n", "22\n", "late\n"]);
}

async fn next(rx: &mut tokio::sync::mpsc::UnboundedReceiver<String>) -> String {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("a line in time")
        .expect("still following")
}

#[tokio::test]
async fn follows_growth_a_torn_line_and_a_rotation_until_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c-json.log");
    File::create(&path).unwrap();
    let state = Arc::new(Mutex::new(RunState::Running));
    let mut f = follower(&path, 5, None, &state);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        while let Some(batch) = batch(&mut f).await {
            for line in batch.unwrap() {
                tx.send(text(&line)).unwrap();
            }
        }
    });
    append(&path, &line(0, "stdout", "a\n"));
    assert_eq!(next(&mut rx).await, "a\n");
    // Half a line: nothing until Docker writes the rest.
    let b = line(SEC, "stdout", "b\n");
    let (head, tail) = b.split_at(b.len() / 2);
    append(&path, head);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(rx.try_recv().is_err(), "a torn line is not sent");
    append(&path, tail);
    assert_eq!(next(&mut rx).await, "b\n");
    // The last line of the old file and the rotation both happen between
    // two polls; then the new file grows.
    append(&path, &line(2 * SEC, "stdout", "c\n"));
    rotate(&path);
    append(&path, &line(3 * SEC, "stderr", "d\n"));
    assert_eq!(next(&mut rx).await, "c\n");
    assert_eq!(next(&mut rx).await, "d\n");
    // Docker writes the last lines, then reports the stop.
    append(&path, &line(4 * SEC, "stdout", "e\n"));
    *state.lock().unwrap() = RunState::Stopped;
    assert_eq!(next(&mut rx).await, "e\n");
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("the follower ends after the stop")
        .unwrap();
    assert!(rx.recv().await.is_none());
}

#[tokio::test]
async fn a_truncated_file_is_read_again_from_its_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c-json.log");
    append(
        &path,
        &(line(0, "stdout", "a\n") + &line(SEC, "stdout", "b\n")),
    );
    let state = Arc::new(Mutex::new(RunState::Running));
    let mut f = follower(&path, 1, None, &state);
    let first = batch(&mut f).await.unwrap().unwrap();
    assert_eq!(texts(&first), ["a\n", "b\n"]);
    // max-file=1: Docker truncates the same file and writes on.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();
    append(&path, &line(2 * SEC, "stdout", "c\n"));
    *state.lock().unwrap() = RunState::Stopped;
    assert_eq!(texts(&drain(f).await), ["c\n"]);
}

#[tokio::test]
async fn lines_across_reads_long_lines_and_garbage() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c-json.log");
    let mut json = String::new();
    // Some 600 KiB: several reads, lines cut at each read's end.
    for i in 0..3000 {
        json += &line(i, "stdout", &format!("{i:0>150}\n"));
    }
    json += "{\"log\":\"garbage\n";
    // One line longer than a read: 100 KiB of control bytes, each written
    // as `\u0001` (600 KiB of JSON).
    let long = "\u{1}".repeat(100 * 1024);
    json += &line(3000, "stderr", &long);
    json += &line(3001, "stdout", "after\n");
    append(&path, &json);
    let state = Arc::new(Mutex::new(RunState::Stopped));
    let got = drain(follower(&path, 1, None, &state)).await;
    // The long line is seven CRI lines: six of 16 KiB and the rest.
    assert_eq!(got.len(), 3000 + 7 + 1);
    for (i, m) in got.iter().take(3000).enumerate() {
        assert_eq!(text(m), format!("{i:0>150}\n"));
        assert_eq!(m.nanos, BASE + i as i64);
    }
    let parts = &got[3000..3007];
    let tags: Vec<u8> = parts.iter().map(|l| l.tag).collect();
    assert_eq!(tags, b"PPPPPPF");
    assert!(
        parts
            .iter()
            .all(|l| l.nanos == BASE + 3000 && l.stream == LogStream::Stderr)
    );
    assert_eq!(
        parts
            .iter()
            .flat_map(|l| l.content.clone())
            .collect::<Vec<u8>>(),
        long.as_bytes()
    );
    assert_eq!(texts(&got[3007..]), ["after\n"]);
}

#[tokio::test]
async fn a_missing_current_file_is_an_error_for_the_caller() {
    let dir = tempfile::tempdir().unwrap();
    let err = open_files(&dir.path().join("none-json.log"), 5, None).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
}

#[tokio::test]
async fn two_rotations_between_reads_lose_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c-json.log");
    append(&path, &line(0, "stdout", "a\n"));
    let state = Arc::new(Mutex::new(RunState::Running));
    let mut f = follower(&path, 3, None, &state);
    assert_eq!(texts(&batch(&mut f).await.unwrap().unwrap()), ["a\n"]);
    append(&path, &line(SEC, "stdout", "b\n"));
    rotate(&path);
    append(&path, &line(2 * SEC, "stdout", "c\n"));
    rotate(&path);
    append(&path, &line(3 * SEC, "stdout", "d\n"));
    *state.lock().unwrap() = RunState::Stopped;
    assert_eq!(texts(&drain(f).await), ["b\n", "c\n", "d\n"]);
}

#[tokio::test]
async fn a_wake_makes_the_follower_check_for_the_stop_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c-json.log");
    append(&path, &line(0, "stdout", "a\n"));
    let state = Arc::new(Mutex::new(RunState::Running));
    let slow = Timing {
        stop_check: Duration::from_secs(600),
        ..fast()
    };
    let (mut f, wake) = follower_with(&path, 1, None, &state, slow, None);
    assert_eq!(texts(&batch(&mut f).await.unwrap().unwrap()), ["a\n"]);
    // The first check at EOF happens at once and finds it running; the
    // next would be ten minutes away.
    let task = tokio::spawn(async move {
        let mut n = 0;
        while let Some(batch) = batch(&mut f).await {
            n += batch.unwrap().len();
        }
        n
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    append(&path, &line(SEC, "stdout", "last\n"));
    *state.lock().unwrap() = RunState::Stopped;
    wake.notify_one();
    let got = tokio::time::timeout(Duration::from_secs(2), task)
        .await
        .expect("woken")
        .unwrap();
    assert_eq!(got, 1, "the last line, then the end");
}

/// Only the watch can wake it: the idle sleep and the stop check are an
/// hour away.
fn watched() -> Timing {
    Timing {
        poll_min: Duration::from_millis(1),
        poll_max: Duration::from_millis(4),
        idle: Duration::from_secs(3600),
        stop_check: Duration::from_secs(3600),
    }
}

#[tokio::test]
async fn an_idle_follower_lets_its_buffer_go_and_wakes_on_changes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c-json.log");
    append(&path, &line(0, "stdout", "a\n"));
    let state = Arc::new(Mutex::new(RunState::Running));
    let files = FileWatch::new().unwrap();
    let (mut f, wake) = follower_with(&path, 2, None, &state, watched(), Some(files));
    assert_eq!(texts(&batch(&mut f).await.unwrap().unwrap()), ["a\n"]);
    assert!(
        tokio::time::timeout(Duration::from_millis(200), batch(&mut f))
            .await
            .is_err(),
        "nothing new was written"
    );
    assert_eq!(f.buf.capacity(), 0, "an idle follower holds no buffer");
    assert!(f.armed.is_some(), "an idle follower watches its file");

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        while let Some(batch) = batch(&mut f).await {
            for text in texts(&batch.unwrap()) {
                let _ = tx.send(text);
            }
        }
    });
    append(&path, &line(SEC, "stdout", "b\n"));
    assert_eq!(next(&mut rx).await, "b\n");
    // Idle again, then rotated: the rename wakes it, the new file is read.
    tokio::time::sleep(Duration::from_millis(100)).await;
    rotate(&path);
    append(&path, &line(2 * SEC, "stdout", "c\n"));
    assert_eq!(next(&mut rx).await, "c\n");
    tokio::time::sleep(Duration::from_millis(100)).await;
    append(&path, &line(3 * SEC, "stdout", "d\n"));
    assert_eq!(next(&mut rx).await, "d\n");
    *state.lock().unwrap() = RunState::Stopped;
    wake.notify_one();
    tokio::time::timeout(Duration::from_secs(2), task)
        .await
        .expect("ended once stopped")
        .unwrap();
}

#[tokio::test]
async fn the_final_pass_reads_again_after_a_short_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c-json.log");
    append(&path, &line(0, "stdout", "a\n"));
    let state = Arc::new(Mutex::new(RunState::Running));
    let mut f = follower(&path, 1, None, &state);
    assert_eq!(texts(&batch(&mut f).await.unwrap().unwrap()), ["a\n"]);
    // Stopped: the final pass gets "b" in a short read...
    *state.lock().unwrap() = RunState::Stopped;
    append(&path, &line(SEC, "stdout", "b\n"));
    assert_eq!(texts(&batch(&mut f).await.unwrap().unwrap()), ["b\n"]);
    // ...and Docker's last flush after it is still read, not cut off by
    // the end the short read saw.
    append(&path, &line(2 * SEC, "stdout", "c\n"));
    assert_eq!(texts(&drain(f).await), ["c\n"]);
}

#[tokio::test]
async fn a_call_dropped_while_waiting_loses_and_doubles_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c-json.log");
    append(&path, &line(0, "stdout", "a\n"));
    let state = Arc::new(Mutex::new(RunState::Running));
    let mut f = follower(&path, 1, None, &state);
    let mut got = texts(&batch(&mut f).await.unwrap().unwrap());
    for i in 1..20 {
        // At the end of the file: the call waits, and is dropped (the
        // writer serving a reopen does that) at whatever await it is in.
        let mut lines = CriLines::new();
        let call = tokio::time::timeout(Duration::from_millis(3), f.next_batch(&mut lines)).await;
        assert!(call.is_err(), "nothing to read yet");
        assert!(lines.is_empty());
        append(&path, &line(i * SEC, "stdout", &format!("{i}\n")));
        got.extend(texts(&batch(&mut f).await.unwrap().unwrap()));
    }
    append(&path, &line(20 * SEC, "stdout", "last\n"));
    *state.lock().unwrap() = RunState::Stopped;
    got.extend(texts(&drain(f).await));
    let want: Vec<String> = std::iter::once("a\n".to_string())
        .chain((1..20).map(|i| format!("{i}\n")))
        .chain(["last\n".to_string()])
        .collect();
    assert_eq!(got, want);
}

#[tokio::test]
async fn an_idle_follower_lets_the_callers_buffer_go_too() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c-json.log");
    append(&path, &line(0, "stdout", "a burst\n"));
    let state = Arc::new(Mutex::new(RunState::Running));
    let mut f = follower(&path, 1, None, &state);
    let mut lines = CriLines::new();
    f.next_batch(&mut lines).await.unwrap().unwrap();
    assert_eq!(lines.len(), 1);
    // Written and emptied, with the room of a large batch kept.
    lines.clear(1 << 20);
    assert!(lines.capacity() > 0);
    // The file stays quiet past the polls' back-off (10 ms here).
    let call = tokio::time::timeout(Duration::from_millis(100), f.next_batch(&mut lines)).await;
    assert!(call.is_err(), "nothing to read");
    assert_eq!(lines.capacity(), 0);
    assert!(f.buf.is_empty());
}

#[tokio::test]
async fn a_long_line_grows_the_buffer_and_it_shrinks_after() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c-json.log");
    let long = "x".repeat(3 * READ_SIZE) + "\n";
    append(&path, &line(0, "stdout", &long));
    append(&path, &line(SEC, "stdout", "short\n"));
    let state = Arc::new(Mutex::new(RunState::Stopped));
    let mut f = follower(&path, 1, None, &state);
    let mut got = Vec::new();
    while got
        .last()
        .is_none_or(|l: &Line| l.tag != b'F' || l.content != b"short")
    {
        got.extend(batch(&mut f).await.unwrap().unwrap());
    }
    // The long line in 16 KiB parts, then the short one.
    let (short, parts) = got.split_last().unwrap();
    assert_eq!(text(short), "short\n");
    assert_eq!(parts.len(), (long.len() - 1).div_ceil(16 * 1024));
    assert!(parts[..parts.len() - 1].iter().all(|l| l.tag == b'P'));
    let joined: Vec<u8> = parts.iter().flat_map(|l| l.content.clone()).collect();
    assert!(joined.len() == long.len() - 1 && joined.iter().all(|b| *b == b'x'));
    assert!(f.buf.len() <= READ_SIZE, "buffer kept at {}", f.buf.len());
}

#[test]
fn polls_fall_on_a_shared_grid() {
    let now = Instant::now();
    let a = on_tick(now + Duration::from_millis(50));
    let b = on_tick(now + Duration::from_millis(53));
    for t in [a, b] {
        assert!(t >= now + Duration::from_millis(50) && t <= now + Duration::from_millis(63));
    }
    // Two deadlines within one step of the grid land on the same instant,
    // and one already on the grid stays where it is.
    let c = on_tick(a + Duration::from_millis(1));
    assert_eq!(on_tick(a), a);
    assert_eq!(c, a + TICK);
    assert_eq!(on_tick(c - Duration::from_millis(3)), c);
}
