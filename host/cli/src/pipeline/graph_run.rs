//! Running a graph config: a thread per input, per plugin and per output, joined by bounded
//! channels that carry shared references to frames in one region.
//!
//! Every node (an input or a plugin) owns a boundary of the region and hands out its slots. A
//! frame is one slot of its node's boundary; each consumer gets a reference to it ([`FrameRef`]),
//! and the slot goes back to its node when the last consumer drops it: a node feeding a preview
//! and a master is read in place by both. A plugin's process maps the boundaries of its inputs
//! read-only and its own writable, and each frame names the slots its inputs lie in
//! (`Region::set_inputs`). Nothing is copied between nodes: sources decode into their boundary;
//! outputs encode from a copy of their own (a plugin process can still write its boundary).
//!
//! Timing: a plugin makes one frame for each frame of its *clock*, its first input that has not
//! ended. Each other input gives the latest frame whose timestamp is at or before the clock
//! frame's, or its first frame while none is that early: a 10 fps input beside a 30 fps one
//! repeats each frame three times, and a still image (one frame) stands for the whole run. When
//! the clock ends held (`on_end = "hold_last"`, or a still image) the next input that has not
//! ended becomes the clock, and the ended one keeps its last frame; when an input ends with
//! `stop`, its consumers end at the first clock frame later than its last.
//!
//! Failures: `skip` makes no frame (consumers pairing with the node keep its previous one);
//! `passthrough` hands on the first input's frame itself, so consumers also map, read-only, the
//! boundaries such a frame can come from (no copy either); `fail` ends the whole graph with the
//! error. A node disabled after `max_restarts` applies its policy to every further frame, and
//! the other branches keep running. Graphs run each plugin as one process, on shared memory.

use super::convert::{ConversionLog, Converter};
use super::stats::{PluginStats, RunStats};
use super::{
    Live, LiveControl, Progress, RunError, RunOptions, check_output_shape, lane_desc, panic_message, rgba_bytes,
};
use crate::config::{Config, OnError, ParamChange, PluginConfig};
use crate::graph::{Node, OnEnd};
use crate::io::{self, FrameShape, MediaError, Sink, Source, StreamInfo};
use plugin_host::ipc::protocol::Transport;
use plugin_host::ipc::region::{Buffer, Lane, NodeBuffers, Region};
use plugin_host::process::{ErrorKind, PluginError, PluginProcess, PluginSpec, StartFailure, Violation};
use plugin_sdk::abi::FrameDesc;
use plugin_sdk::{Frame, OwnedFrame, PixelFormat, Shape};
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, SyncSender, channel, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Frames an edge holds between a node and one consumer.
const EDGE_DEPTH: usize = 2;
/// How often a thread waiting for a free slot looks whether the run is over.
const POLL: Duration = Duration::from_millis(50);

/// One frame of a node, in a slot of the node's boundary; the slot goes back to the node when
/// the last reference is dropped.
struct Shared {
    /// Until when it stands, in microseconds: its time plus its duration.
    until_us: i64,
    /// The number of the input frame it comes from (its clock's, through every plugin), from 1:
    /// outputs name frames by it, so a skipped frame leaves a gap.
    number: u64,
    boundary: u32,
    token: Option<Lane>,
    desc: FrameDesc,
    /// Encoded `FrameMeta`, known to decode.
    meta: Vec<u8>,
    free: Sender<Lane>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        if let Some(token) = self.token.take() {
            let _ = self.free.send(token);
        }
    }
}

impl Shared {
    fn token(&self) -> &Lane {
        self.token.as_ref().expect("a frame holds its slot until dropped")
    }
}

type FrameRef = Arc<Shared>;

/// What travels on an edge: frames, then how their node ended (`hold`: its last frame stays
/// valid). A closed edge is an end that does not hold.
enum Msg {
    Frame(FrameRef),
    /// No frame for this time (a skipped frame, or one that could not be made): consumers that
    /// pair with the node know it has got past it, and keep its frame before.
    Gap(i64),
    End {
        hold: bool,
    },
}

/// Where a node's frames go.
struct Fanout(Vec<SyncSender<Msg>>);

impl Fanout {
    /// Gives `frame` to every consumer still there; false once none is.
    fn send(&mut self, frame: &FrameRef) -> bool {
        self.0.retain(|tx| tx.send(Msg::Frame(Arc::clone(frame))).is_ok());
        !self.0.is_empty()
    }

    /// Tells every consumer still there that there is no frame for `timestamp_us`; false once
    /// none is there.
    fn gap(&mut self, timestamp_us: i64) -> bool {
        self.0.retain(|tx| tx.send(Msg::Gap(timestamp_us)).is_ok());
        !self.0.is_empty()
    }

    fn end(self, hold: bool) {
        for tx in self.0 {
            let _ = tx.send(Msg::End { hold });
        }
    }
}

/// Takes a free slot from `free`, waiting while the run goes on; `None` once it is over.
fn next_slot(free: &Receiver<Lane>, abort: &AtomicBool) -> Option<Lane> {
    loop {
        match free.recv_timeout(POLL) {
            Ok(lane) => return Some(lane),
            Err(RecvTimeoutError::Timeout) if !abort.load(Ordering::Acquire) => {}
            Err(_) => return None,
        }
    }
}

/// The next message on an edge, waiting while the run goes on; a closed edge, or a run that is
/// over, is an end that does not hold.
fn receive(rx: &Receiver<Msg>, abort: &AtomicBool) -> Msg {
    loop {
        match rx.recv_timeout(POLL) {
            Ok(msg) => return msg,
            Err(RecvTimeoutError::Timeout) if !abort.load(Ordering::Acquire) => {}
            Err(_) => return Msg::End { hold: false },
        }
    }
}

/// An input of the graph, ready to run.
struct InputRun {
    name: String,
    source: Box<dyn Source>,
    /// The format its frames are converted to for the plugins that take them, if another.
    convert_to: Option<PixelFormat>,
    hold: bool,
    /// A still image: one frame, valid for the whole run.
    still: bool,
}

/// A plugin of the graph, started.
struct NodeRun {
    config: PluginConfig,
    process: PluginProcess,
    /// Its view of the region (the boundary it writes is its output's).
    view: Region,
    /// The node each input comes from.
    inputs: Vec<Node>,
    output: Shape,
}

/// An output of the graph, prepared.
struct OutputRun {
    label: String,
    sink: Box<dyn Sink>,
    colour: plugin_sdk::convert::Colour,
}

/// A checked, started graph.
pub(super) struct Graph {
    config: Config,
    region: Region,
    inputs: Vec<InputRun>,
    nodes: Vec<NodeRun>,
    outputs: Vec<OutputRun>,
    /// Format conversions between a node and the plugins that take its frames in another
    /// format: (the node, the format), each with a boundary after the plugins'.
    converters: Vec<(Node, PixelFormat)>,
    /// Which plugin inputs (plugin, input) come through which converter.
    routed: BTreeMap<(usize, usize), usize>,
    options: RunOptions,
    conversions: ConversionLog,
    shapes: Vec<String>,
}

impl Graph {
    pub(super) fn new(config: &Config, options: RunOptions) -> Result<Self, RunError> {
        let graph = config.graph();
        let mut inputs = Vec::new();
        for (i, input) in config.inputs().iter().enumerate() {
            let name = graph.inputs()[i].name.clone();
            let source = io::open_source(input).map_err(|e| config.error(format!("input \"{name}\": {e}")))?;
            let (width, height, format) = source.shape();
            let bytes = rgba_bytes(Shape::new(width, height, format));
            if bytes > config.max_frame_bytes {
                return Err(config
                    .error(format!(
                        "input \"{name}\": its {width}x{height} frames are {bytes} bytes as RGBA, more than \
                         max_frame_bytes = {}",
                        config.max_frame_bytes
                    ))
                    .into());
            }
            // A still image (one frame) is valid for the whole run.
            let still = matches!(input, crate::config::InputConfig::Png { .. }) && source.len_hint() == Some(1);
            let hold = still || graph.inputs()[i].on_end == OnEnd::HoldLast;
            inputs.push(InputRun { name, source, convert_to: None, hold, still });
        }
        if let Some(plugin) = config.plugins.iter().find(|p| p.transport == Transport::Pipe) {
            return Err(config
                .error(format!(
                    "plugin \"{}\": in a graph every plugin reads its inputs in place: leave transport out, or set it to \"shm\"",
                    plugin.name
                ))
                .into());
        }
        let (input_count, plugin_count) = (inputs.len(), config.plugins.len());
        let boundary = |node: Node| match node {
            Node::Input(i) => i as u32,
            Node::Plugin(p) => (input_count + p) as u32,
        };
        // Slots per boundary: enough that a node always finds a free one, so that only the
        // edges hold a node back (and they are read in time order: no graph deadlocks). Each
        // consumer holds at most its edge's frames and two more (the latest and the next, or
        // the one it works on); a consumer that passes frames through lends them to its own.
        // A converter between a node and its consumers holds no more than they would.
        fn holders(graph: &crate::graph::Graph, config: &Config, node: Node) -> usize {
            let (plugins, outputs) = graph.consumers(node);
            let passing = |&p: &usize| match config.plugins[p].on_error == OnError::Passthrough {
                true => holders(graph, config, Node::Plugin(p)),
                false => 0,
            };
            plugins.len() + outputs.len() + plugins.iter().map(passing).sum::<usize>()
        }
        let nodes_all = (0..input_count).map(Node::Input).chain((0..plugin_count).map(Node::Plugin));
        let (busiest, most) =
            nodes_all.map(|n| (n, holders(graph, config, n))).max_by_key(|&(_, h)| h).unwrap_or((Node::Input(0), 1));
        let slots = 2 + most as u32 * (EDGE_DEPTH as u32 + 2);
        if slots > plugin_host::ipc::region::MAX_SLOTS {
            return Err(config
                .error(format!(
                    "{} feeds {most} consumers (counting those a passthrough plugin hands its frames to); at most {}",
                    describe(graph, busiest),
                    (plugin_host::ipc::region::MAX_SLOTS - 2) / (EDGE_DEPTH as u32 + 2)
                ))
                .into());
        }
        let slots = slots.max(config.ring + 2).min(plugin_host::ipc::region::MAX_SLOTS);
        let native: Vec<Shape> = inputs
            .iter()
            .map(|input| {
                let (w, h, f) = input.source.shape();
                Shape::new(w, h, f)
            })
            .collect();
        let first_bytes = native.iter().map(|&shape| rgba_bytes(shape)).max().unwrap_or(0);
        let mut frame_bytes = first_bytes;
        // Frames reach each plugin in a format it takes. An input whose plugins all take one
        // format is converted to it at the source; otherwise (and between plugins) a converter
        // node makes the frames in the other format once, for every consumer that wants them,
        // in a boundary of its own. Which converters there are is known once the plugins have
        // said what they take: the graph is started again with them, once.
        let mut converters: Vec<(Node, PixelFormat)> = Vec::new();
        let mut routed: BTreeMap<(usize, usize), usize> = BTreeMap::new();
        let mut source_formats: Vec<Option<PixelFormat>> = vec![None; input_count];
        let mut starts = 0;
        let (region, nodes) = loop {
            starts += 1;
            let boundaries = (input_count + plugin_count + converters.len()) as u32;
            if boundaries > plugin_host::ipc::region::MAX_STAGES {
                let most = plugin_host::ipc::region::MAX_STAGES;
                return Err(config
                    .error(format!("a graph has at most {most} inputs, plugins and format conversions together"))
                    .into());
            }
            // Where input `k` of plugin `p` comes from: its node's boundary, or a converter's.
            let input_boundary = |p: usize, k: usize| match routed.get(&(p, k)) {
                Some(&c) => (input_count + plugin_count + c) as u32,
                None => boundary(graph.plugins()[p].inputs[k]),
            };
            // What a plugin maps: its inputs' boundaries and, through inputs that pass failed
            // frames through, the boundaries those frames come from.
            let reads = |p: usize| {
                let mut reads = Vec::new();
                let mut todo: Vec<(usize, usize)> =
                    (0..graph.plugins()[p].inputs.len()).rev().map(|k| (p, k)).collect();
                while let Some((q, k)) = todo.pop() {
                    let b = input_boundary(q, k);
                    if !reads.contains(&b) {
                        reads.push(b);
                    }
                    if let Node::Plugin(r) = graph.plugins()[q].inputs[k]
                        && config.plugins[r].on_error == OnError::Passthrough
                    {
                        todo.push((r, 0));
                    }
                }
                reads
            };
            let region = Region::create_with_workers(
                "plugin-host:graph",
                boundaries.max(2),
                boundaries.max(2),
                slots,
                frame_bytes,
            )
            .map_err(|e| RunError::Plugin(PluginError { plugin: "graph".into(), kind: e.into() }))?;
            let mut shapes: Vec<Option<Shape>> = vec![None; plugin_count];
            let mut nodes: Vec<Option<NodeRun>> = (0..plugin_count).map(|_| None).collect();
            // The format each plugin input takes its frames in.
            let mut wants: BTreeMap<(usize, usize), PixelFormat> = BTreeMap::new();
            let mut needed = frame_bytes;
            for &p in graph.order() {
                let plugin = &config.plugins[p];
                let given: Vec<Shape> = graph.plugins()[p]
                    .inputs
                    .iter()
                    .enumerate()
                    .map(|(k, &node)| {
                        let shape = match node {
                            Node::Input(i) => {
                                Shape { format: source_formats[i].unwrap_or(native[i].format), ..native[i] }
                            }
                            Node::Plugin(q) => shapes[q].expect("plugins start after what they take"),
                        };
                        match routed.get(&(p, k)) {
                            Some(&c) => Shape { format: converters[c].1, ..shape },
                            None => shape,
                        }
                    })
                    .collect();
                // Inputs that meet at one plugin in different formats all come as rgba8 (the
                // format every frame converts to without loss of colour): a crossfade of a video
                // and a plugin's RGBA output compares like with like.
                let mixed = given.iter().any(|shape| shape.format != given[0].format);
                let given: Vec<Shape> = match mixed {
                    true => given.into_iter().map(|shape| Shape { format: PixelFormat::Rgba8, ..shape }).collect(),
                    false => given,
                };
                let view = region
                    .for_node(p as u32, NodeBuffers { reads: reads(p), write: boundary(Node::Plugin(p)) })
                    .map_err(|e| config.error(e.to_string()))?;
                let process =
                    start(plugin, frame_bytes, &view, &options, &given).map_err(|e| match e.kind.start_failure() {
                        StartFailure::Interrupted => RunError::Interrupted,
                        StartFailure::BadPlugin | StartFailure::Init => RunError::Config(config.error(e.to_string())),
                        StartFailure::Host => RunError::Plugin(e),
                    })?;
                let description = process.description();
                let takes: Vec<&str> = match description.inputs.is_empty() {
                    true => vec![plugin_sdk::InputSpec::MAIN.name],
                    false => description.inputs.iter().map(|i| i.name.as_str()).collect(),
                };
                graph.check_input_count(p, &takes).map_err(|e| config.error(e))?;
                for (k, &node) in graph.plugins()[p].inputs.iter().enumerate() {
                    let Some(taken) = process.taken(given[k]) else {
                        return Err(config
                            .error(format!(
                                "plugin \"{}\" takes none of the formats {}'s {} frames convert to (it takes {})",
                                plugin.name,
                                describe(graph, node),
                                given[k].format.name(),
                                description.formats.join(", ")
                            ))
                            .into());
                    };
                    wants.insert((p, k), taken.format);
                }
                let output = process
                    .output_shape()
                    .ok_or_else(|| config.error(format!("plugin \"{}\" declared no output shape", plugin.name)))?;
                let first = process.taken(given[0]).unwrap_or(given[0]);
                needed = needed.max(check_output_shape(config, plugin, first, output)?);
                shapes[p] = Some(output);
                let inputs = graph.plugins()[p].inputs.clone();
                nodes[p] = Some(NodeRun { config: plugin.clone(), process, view, inputs, output });
                if needed > frame_bytes {
                    break;
                }
            }
            // Each start can only find a larger frame; one per plugin at most.
            if needed > frame_bytes {
                if starts > plugin_count + 2 {
                    return Err(config.error("the plugins declared other output shapes when started again").into());
                }
                frame_bytes = needed;
                continue;
            }
            // Each edge whose frames are not in the format its plugin takes gets a converter
            // (one per node and format); an input's plugins that all take one format have it
            // made at the source instead.
            for (i, format) in source_formats.iter_mut().enumerate() {
                let native = native[i].format;
                let taken: Vec<PixelFormat> = wants
                    .iter()
                    .filter(|&(&(p, k), _)| graph.plugins()[p].inputs[k] == Node::Input(i))
                    .map(|(_, &f)| f)
                    .collect();
                format.get_or_insert(match taken.contains(&native) {
                    true => native,
                    false => taken.first().copied().unwrap_or(native),
                });
            }
            let mut added = false;
            for (&(p, k), &want) in &wants {
                let node = graph.plugins()[p].inputs[k];
                let made = match node {
                    Node::Input(i) => source_formats[i].unwrap_or(native[i].format),
                    Node::Plugin(q) => shapes[q].map_or(want, |s| s.format),
                };
                if want == made || routed.contains_key(&(p, k)) {
                    continue;
                }
                let c = match converters.iter().position(|&(n, f)| n == node && f == want) {
                    Some(c) => c,
                    None => {
                        converters.push((node, want));
                        converters.len() - 1
                    }
                };
                routed.insert((p, k), c);
                added = true;
            }
            if !added {
                break (region, nodes.into_iter().map(|n| n.expect("every plugin started")).collect::<Vec<_>>());
            }
            if starts > plugin_count + 2 {
                return Err(config.error("the plugins asked for other formats when started again").into());
            }
        };
        for (i, input) in inputs.iter_mut().enumerate() {
            input.convert_to = source_formats[i].filter(|&f| f != native[i].format);
        }
        for (p, change) in options.changes.iter().enumerate() {
            let index = config.plugin_index(&change.plugin).map_err(|e| config.error(e))?;
            nodes[index].process.description().resolve_params(&change.params).map_err(|e| {
                config.error(format!(
                    "change #{}: at {} ms: plugin \"{}\": {e}",
                    p + 1,
                    change.at_us / 1000,
                    change.plugin
                ))
            })?;
        }
        let mut outputs = Vec::new();
        for (o, output) in config.outputs().iter().enumerate() {
            let node = &graph.outputs()[o];
            let label = match &node.name {
                Some(name) => format!("output \"{name}\""),
                None => format!("output #{}", o + 1),
            };
            // Its rate and colour are those of the input its frames come from first.
            let stills: Vec<bool> = inputs.iter().map(|i| i.still).collect();
            let info = inputs[origin(graph, node.from, &stills)].source.info();
            let height = match node.from {
                Node::Input(i) => inputs[i].source.shape().1,
                Node::Plugin(p) => nodes[p].output.height,
            };
            // A video file's audio, when the frames come from one, goes to a video output.
            let source = origin(graph, node.from, &stills);
            let audio = match (&config.inputs()[source], inputs[source].source.audio_codec()) {
                (crate::config::InputConfig::Video { path, .. }, Some(codec)) => Some((path.clone(), codec)),
                _ => None,
            };
            let audio = audio.as_ref().map(|(path, codec)| (path.as_path(), codec.as_str()));
            let sink = io::open_sink(output, &info, audio).map_err(|e| config.error(format!("{label}: {e}")))?;
            let colour = match sink.tags_colour() {
                true => info.colour,
                false => plugin_sdk::convert::Colour {
                    matrix: StreamInfo::guess_colour(height).matrix,
                    range: info.colour.range,
                },
            };
            outputs.push(OutputRun { label, sink, colour });
        }
        let mut shapes: Vec<String> = inputs
            .iter()
            .map(|i| {
                let (w, h, f) = i.source.shape();
                format!("{} {}", i.name, Shape::new(w, h, f))
            })
            .collect();
        shapes.extend(nodes.iter().map(|n| {
            let from: Vec<&str> = n.inputs.iter().map(|&i| graph.name(i)).collect();
            format!("{} {} from {}", n.config.name, n.output, from.join(", "))
        }));
        Ok(Graph {
            config: config.clone(),
            region,
            inputs,
            nodes,
            outputs,
            converters,
            routed,
            options,
            conversions: ConversionLog::default(),
            shapes,
        })
    }

    pub(super) fn processes(&self) -> impl Iterator<Item = &PluginProcess> {
        self.nodes.iter().map(|n| &n.process)
    }

    pub(super) fn output_is_stdout(&self) -> bool {
        self.outputs.iter().any(|o| o.sink.uses_stdout())
    }

    pub(super) fn run(self, progress: &mut dyn Progress) -> (RunStats, Result<(), RunError>) {
        let Graph { config, region, inputs, nodes, outputs, converters, routed, options, conversions, shapes } = self;
        let graph = config.graph().clone();
        let started = Instant::now();
        progress.start(None);
        let abort = Arc::new(AtomicBool::new(false));
        let first_error: Arc<Mutex<Option<RunError>>> = Arc::default();
        let fail = {
            let (abort, first_error) = (Arc::clone(&abort), Arc::clone(&first_error));
            move |error: RunError| {
                if let Ok(mut first) = first_error.lock()
                    && first.is_none()
                {
                    *first = Some(error);
                }
                abort.store(true, Ordering::Release);
            }
        };
        // Each boundary's free slots.
        let mut pools: Vec<(Sender<Lane>, Option<Receiver<Lane>>)> = Vec::new();
        for tokens in region.take_buffers() {
            let (tx, rx) = channel();
            for token in tokens {
                let _ = tx.send(token);
            }
            pools.push((tx, Some(rx)));
        }
        let views: Arc<Vec<Region>> = Arc::new(
            (0..pools.len() as u32).map(|b| region.for_worker(0, b).expect("a view of each boundary")).collect(),
        );
        // The edges: every node's fan-out, every consumer's receivers in its inputs' order.
        // Inputs, plugins, then converters, by index (their boundaries' order too).
        let (input_count, plugin_count) = (inputs.len(), nodes.len());
        let node_count = input_count + plugin_count + converters.len();
        let index = |node: Node| match node {
            Node::Input(i) => i,
            Node::Plugin(p) => input_count + p,
        };
        let mut fanouts: Vec<Vec<SyncSender<Msg>>> = (0..node_count).map(|_| Vec::new()).collect();
        let mut edge = |from: usize| {
            let (tx, rx) = sync_channel(EDGE_DEPTH);
            fanouts[from].push(tx);
            rx
        };
        let converter_inputs: Vec<Receiver<Msg>> = converters.iter().map(|&(node, _)| edge(index(node))).collect();
        let mut node_inputs: Vec<Vec<Receiver<Msg>>> = Vec::new();
        for (p, node) in nodes.iter().enumerate() {
            let receivers = (0..node.inputs.len())
                .map(|k| match routed.get(&(p, k)) {
                    Some(&c) => edge(input_count + plugin_count + c),
                    None => edge(index(node.inputs[k])),
                })
                .collect();
            node_inputs.push(receivers);
        }
        let output_inputs: Vec<Receiver<Msg>> = graph.outputs().iter().map(|o| edge(index(o.from))).collect();
        let mut fanouts = fanouts.into_iter().map(|f| Some(Fanout(f))).collect::<Vec<_>>();

        let colours: Vec<plugin_sdk::convert::Colour> = inputs.iter().map(|i| i.source.info().colour).collect();
        let stills: Vec<bool> = inputs.iter().map(|i| i.still).collect();
        let frames_in = Arc::new(AtomicU64::new(0));
        let mut source_threads = Vec::new();
        for (i, input) in inputs.into_iter().enumerate() {
            let free = pools[i].1.take().expect("each pool is taken once");
            let fanout = fanouts[i].take().expect("each fan-out is taken once");
            let view = views[i].clone();
            let pool = pools[i].0.clone();
            let (abort, fail, counted) = (Arc::clone(&abort), fail.clone(), Arc::clone(&frames_in));
            let converter = Converter::new(
                format!("after input \"{}\"", input.name),
                input.source.info().colour,
                conversions.clone(),
            );
            let live = options.live.clone();
            let max_frames = options.max_frames;
            source_threads.push(std::thread::spawn(move || {
                let source = SourceRun { input, view, free, pool, fanout, converter, max_frames, live, counted };
                if let Err(e) = source.run(&abort) {
                    fail(e);
                }
            }));
        }

        let mut converter_threads = Vec::new();
        for (c, (&(node, to), rx)) in converters.iter().zip(converter_inputs).enumerate() {
            let b = input_count + plugin_count + c;
            let run = ConverterRun {
                rx,
                views: Arc::clone(&views),
                boundary: b as u32,
                free: pools[b].1.take().expect("each pool is taken once"),
                pool: pools[b].0.clone(),
                fanout: fanouts[b].take().expect("each fan-out is taken once"),
                converter: Converter::new(
                    format!("after {} (for the plugins that take {})", describe(&graph, node), to.name()),
                    colours[origin(&graph, node, &stills)],
                    conversions.clone(),
                ),
                to,
            };
            let (abort, fail) = (Arc::clone(&abort), fail.clone());
            converter_threads.push(std::thread::spawn(move || run.run(&abort, &fail)));
        }

        let mut node_threads = Vec::new();
        for (p, (node, receivers)) in nodes.into_iter().zip(node_inputs).enumerate() {
            let b = index(Node::Plugin(p));
            let free = pools[b].1.take().expect("each pool is taken once");
            let fanout = fanouts[b].take().expect("each fan-out is taken once");
            let pool = pools[b].0.clone();
            let changes: VecDeque<ParamChange> =
                options.changes.iter().filter(|c| c.plugin == node.config.name).cloned().collect();
            let mut live_changes = None;
            if let Some(live) = &options.live {
                let (tx, rx) = channel();
                live_changes = Some(rx);
                if let Ok(mut controls) = live.controls.lock() {
                    let description = node.process.description().clone();
                    let sandbox = node.process.sandbox().summary();
                    let name = node.config.name.clone();
                    controls.push(LiveControl { name, description, sandbox, swappable: false, requests: tx });
                }
            }
            let input_names = node.inputs.iter().map(|&n| describe(&graph, n)).collect();
            let run = NodeThread {
                state: super::KeptState::new(&node.config),
                stats: PluginStats { workers: 1, ..PluginStats::new(&node.config.name) },
                node,
                boundary: b as u32,
                receivers,
                free,
                pool,
                fanout,
                changes,
                live_changes,
                live: options.live.clone().map(|l| (l, p, Instant::now())),
                restarts: VecDeque::new(),
                failures_in_a_row: 0,
                disabled: false,
                last_number: 0,
                last_preview: None,
                input_names,
            };
            let (abort, fail) = (Arc::clone(&abort), fail.clone());
            node_threads.push(std::thread::spawn(move || run.run(&abort, &fail)));
        }
        drop(pools);

        let frames_out: Arc<Vec<AtomicU64>> = Arc::new(outputs.iter().map(|_| AtomicU64::new(0)).collect());
        let mut output_threads = Vec::new();
        for (o, (output, rx)) in outputs.into_iter().zip(output_inputs).enumerate() {
            let views = Arc::clone(&views);
            let (abort, fail, frames_out) = (Arc::clone(&abort), fail.clone(), Arc::clone(&frames_out));
            let converter = Converter::new(format!("before {}", output.label), output.colour, conversions.clone());
            let live = options.live.clone();
            output_threads.push(std::thread::spawn(move || {
                write_output(output, rx, &views, converter, &abort, &frames_out[o], live.as_ref(), &fail)
            }));
        }

        // The progress follows the first output.
        while !output_threads.iter().all(|t| t.is_finished()) {
            std::thread::sleep(POLL);
            progress.frame_done(frames_out[0].load(Ordering::Relaxed));
            if plugin_host::sys::signals::stop_requested() {
                fail(RunError::Interrupted);
            }
        }
        let mut written = Vec::new();
        for handle in output_threads {
            match handle.join() {
                Ok(result) => written.push(result),
                Err(panic) => fail(RunError::Panic(panic_message(&panic))),
            }
        }
        abort.store(true, Ordering::Release);
        let mut plugins = Vec::new();
        let mut copies = 0;
        for handle in node_threads {
            match handle.join() {
                Ok((mut stats, process_copies)) => {
                    stats.finish();
                    copies += process_copies;
                    plugins.push(stats);
                }
                Err(panic) => fail(RunError::Panic(panic_message(&panic))),
            }
        }
        for handle in converter_threads {
            if let Err(panic) = handle.join() {
                fail(RunError::Panic(panic_message(&panic)));
            }
        }
        for handle in source_threads {
            // A source may sit in a blocking read (stdin) after a failure: leave it behind.
            if handle.is_finished()
                && let Err(panic) = handle.join()
            {
                fail(RunError::Panic(panic_message(&panic)));
            }
        }
        progress.finish();
        let error = first_error.lock().ok().and_then(|mut e| e.take());
        let frames_out: u64 = frames_out.iter().map(|n| n.load(Ordering::Relaxed)).sum();
        let mut output_kept_aside = None;
        let mut output_written = false;
        for (sink, wrote) in written {
            let result = match (&error, sink) {
                (_, None) => Ok(None),
                (None, Some(sink)) if wrote > 0 || sink.uses_stdout() => sink.finish().map(|()| None),
                (None, Some(sink)) => {
                    drop(sink);
                    Ok(None)
                }
                (Some(_), Some(sink)) => sink.keep_aside(),
            };
            match result {
                Ok(kept) => {
                    output_written |= wrote > 0 && kept.is_none();
                    output_kept_aside = output_kept_aside.or(kept);
                }
                Err(e) => fail(e.into()),
            }
        }
        let error = error.or_else(|| first_error.lock().ok().and_then(|mut e| e.take()));
        let stats = RunStats {
            graph: true,
            frames_in: frames_in.load(Ordering::Relaxed),
            frames_out,
            wall_s: started.elapsed().as_secs_f64(),
            host_faults_per_frame: 0.0,
            copies,
            plugins,
            conversions: conversions.take(),
            shapes,
            output_written,
            output_kept_aside,
        };
        (stats, error.map_or(Ok(()), Err))
    }
}

/// The input whose frames `node`'s come from (and take their rate and colour from): through each
/// plugin's first input that does not come from a still image (a logo under a video is not
/// what sets the pace), or its first.
fn origin(graph: &crate::graph::Graph, node: Node, stills: &[bool]) -> usize {
    match node {
        Node::Input(i) => i,
        Node::Plugin(p) => {
            let inputs = &graph.plugins()[p].inputs;
            let origins = inputs.iter().map(|&n| origin(graph, n, stills));
            origins.clone().find(|&i| !stills[i]).unwrap_or_else(|| origin(graph, inputs[0], stills))
        }
    }
}

/// `node` as messages name it.
fn describe(graph: &crate::graph::Graph, node: Node) -> String {
    match node {
        Node::Input(_) => format!("input \"{}\"", graph.name(node)),
        Node::Plugin(_) => format!("plugin \"{}\"", graph.name(node)),
    }
}

/// Starts plugin `config` as a graph node on `view`, given frames of `inputs`' shapes.
fn start(
    config: &PluginConfig,
    frame_bytes: u64,
    view: &Region,
    options: &RunOptions,
    inputs: &[Shape],
) -> Result<PluginProcess, PluginError> {
    if config.workers.is_some_and(|w| w > 1) {
        tracing::warn!("plugin \"{}\": in a graph each plugin runs as 1 process (workers ignored)", config.name);
    }
    let mut spec = PluginSpec::new(&config.name, &config.path, frame_bytes);
    spec.params = config.params.clone();
    spec.limits = config.limits.clone();
    spec.transport = Transport::SharedMemory;
    spec.runner = options.runner.clone();
    spec.sandbox = config.sandbox;
    spec.slots = view.slot_count();
    spec.standby = config.max_restarts > 0;
    // A copy of one input only: several inputs are read in place.
    spec.snapshot_input = config.snapshot_input && inputs.len() == 1;
    if config.snapshot_input && inputs.len() > 1 {
        tracing::warn!(
            "plugin \"{}\": input = \"snapshot\" copies one input; it reads its {} in place",
            config.name,
            inputs.len()
        );
    }
    spec.input = inputs.first().copied();
    spec.more_inputs = inputs.iter().skip(1).copied().collect();
    PluginProcess::spawn_stage(spec, view)
}

/// A graph input's thread: decodes into free slots of its boundary and hands each frame to
/// every consumer.
struct SourceRun {
    input: InputRun,
    view: Region,
    free: Receiver<Lane>,
    pool: Sender<Lane>,
    fanout: Fanout,
    converter: Converter,
    max_frames: Option<u64>,
    live: Option<Live>,
    counted: Arc<AtomicU64>,
}

impl SourceRun {
    fn run(mut self, abort: &AtomicBool) -> Result<(), RunError> {
        let interrupted = |e: MediaError| match plugin_host::sys::signals::stop_requested() {
            true => RunError::Interrupted,
            false => RunError::Media(e),
        };
        let mut decoded = OwnedFrame::new(0, 0, PixelFormat::Rgba8);
        let info = self.input.source.info();
        let (mut n, mut stepped, mut last_preview) = (0u64, 0u64, None);
        while self.max_frames.is_none_or(|m| n < m) {
            if let Some(live) = &self.live {
                live.wait_while_paused(&mut stepped, || {
                    abort.load(Ordering::Acquire) || plugin_host::sys::signals::stop_requested()
                });
            }
            let Some(mut token) = next_slot(&self.free, abort) else { break };
            let view = &self.view;
            let mut read_into_slot =
                |fd: std::os::fd::BorrowedFd<'_>, len| view.fill_from_fd(&mut token, Buffer::Input, len, fd);
            let direct = match self.input.convert_to {
                None => self.input.source.next_direct(&mut read_into_slot),
                Some(_) => None,
            };
            let shape = match direct {
                Some(read) => read.map_err(interrupted)?,
                None => match self.input.source.next_into(&mut decoded).map_err(interrupted)? {
                    false => None,
                    true => {
                        let frame = match self.input.convert_to {
                            Some(to) => self
                                .converter
                                .convert(&decoded.view(), to)
                                .map_err(|reason| MediaError::Frame { frame: n + 1, reason })?,
                            None => &decoded,
                        };
                        let shape = FrameShape::of(frame);
                        let bytes = lane_desc(shape, 0).byte_len() as usize;
                        self.view.write_pixels(&mut token, Buffer::Input, &frame.data[..bytes]);
                        Some(shape)
                    }
                },
            };
            let Some(shape) = shape else { break };
            n += 1;
            let total = self.counted.fetch_add(1, Ordering::Relaxed) + 1;
            if let Some(live) = &self.live {
                live.frames_in.store(total, Ordering::Relaxed);
            }
            let desc = lane_desc(shape, self.view.slot_capacity() as u32);
            if let Some(live) = &self.live {
                let (view, name) = (&self.view, &self.input.name);
                live.offer_buffer(
                    name,
                    &mut last_preview,
                    view,
                    &token,
                    Buffer::Input,
                    &lane_desc(shape, view.slot_capacity() as u32),
                );
            }
            let frame_meta = info.frame_meta(n - 1);
            let until_us = desc.timestamp_us.saturating_add(duration_us(&frame_meta));
            let meta = frame_meta.encode().unwrap_or_default();
            // Beside the frame, where the plugins that take it read it.
            self.view.write_meta(token.slot(), Buffer::Input, Some(&meta));
            let boundary = self.view.boundary();
            let free = self.pool.clone();
            let frame = Arc::new(Shared { until_us, number: n, boundary, token: Some(token), desc, meta, free });
            if !self.fanout.send(&frame) {
                return Ok(());
            }
        }
        self.fanout.end(self.input.hold);
        Ok(())
    }
}

/// A converter's thread: makes each frame of a node in the format some plugins take, once for
/// all of them, into its own boundary (the copy out and the conversion are counted).
struct ConverterRun {
    rx: Receiver<Msg>,
    views: Arc<Vec<Region>>,
    boundary: u32,
    free: Receiver<Lane>,
    pool: Sender<Lane>,
    fanout: Fanout,
    converter: Converter,
    to: PixelFormat,
}

impl ConverterRun {
    fn run(mut self, abort: &AtomicBool, fail: &impl Fn(RunError)) {
        let mut pixels = Vec::new();
        loop {
            let frame = match receive(&self.rx, abort) {
                Msg::Frame(frame) => frame,
                Msg::Gap(t) if self.fanout.gap(t) => continue,
                Msg::Gap(_) => return,
                Msg::End { hold } => return self.fanout.end(hold),
            };
            let Some(mut token) = next_slot(&self.free, abort) else { return };
            let desc = frame.desc;
            self.views[frame.boundary as usize].read_pixels(
                frame.token(),
                Buffer::Input,
                desc.byte_len() as usize,
                &mut pixels,
            );
            let format = PixelFormat::from_u32(desc.format).unwrap_or(PixelFormat::Rgba8);
            let converted = Frame::new(&pixels, desc.width, desc.height, desc.stride, format, desc.timestamp_us)
                .map_err(|e| e.0)
                .and_then(|view| self.converter.convert(&view, self.to));
            let out = match converted {
                Ok(out) => out,
                Err(reason) => return fail(RunError::Media(MediaError::Frame { frame: frame.number, reason })),
            };
            let shape = FrameShape::of(out);
            let view = &self.views[self.boundary as usize];
            view.write_pixels(&mut token, Buffer::Input, &out.data[..lane_desc(shape, 0).byte_len() as usize]);
            let desc = lane_desc(shape, view.slot_capacity() as u32);
            view.write_meta(token.slot(), Buffer::Input, Some(&frame.meta));
            let (number, meta, boundary, free) = (frame.number, frame.meta.clone(), self.boundary, self.pool.clone());
            let until_us = frame.until_us;
            let converted = Arc::new(Shared { until_us, number, boundary, token: Some(token), desc, meta, free });
            drop(frame);
            if !self.fanout.send(&converted) {
                return;
            }
        }
    }
}

/// The clock frame a plugin's frame is made for: its time and number become the output's.
#[derive(Debug, Clone, Copy)]
struct Clock {
    timestamp_us: i64,
    until_us: i64,
    number: u64,
}

/// A frame's duration in microseconds, from its metadata (0 when it says none).
fn duration_us(meta: &plugin_sdk::FrameMeta) -> i64 {
    let (num, den) = meta.time_base;
    match den {
        0 => 0,
        _ => (meta.duration as i128 * 1_000_000 * num as i128 / den as i128).clamp(0, i64::MAX as i128) as i64,
    }
}

/// One input of a plugin as its thread pairs it: the latest frame at or before the clock, the
/// next one when already read, and whether it has ended (and holds its last frame).
#[derive(Default)]
struct Pairing {
    latest: Option<FrameRef>,
    next: Option<FrameRef>,
    ended: Option<bool>,
}

impl Pairing {
    /// Reads from `rx` until the next frame is later than `t` or the input ends.
    fn advance(&mut self, rx: &Receiver<Msg>, t: i64, abort: &AtomicBool) {
        loop {
            if let Some(next) = self.next.take() {
                if next.desc.timestamp_us > t && self.latest.is_some() {
                    self.next = Some(next);
                    return;
                }
                // At or before `t`, or the first frame there is: it is the one to use.
                self.latest = Some(next);
                continue;
            }
            if self.ended.is_some() {
                return;
            }
            match receive(rx, abort) {
                Msg::Frame(frame) => self.next = Some(frame),
                // Past `t` with no frame: the latest one stands.
                Msg::Gap(at) if at >= t => return,
                Msg::Gap(_) => {}
                Msg::End { hold } => self.ended = Some(hold),
            }
        }
    }

    /// Whether the input stopped before `t`: ended without holding, and its last frame over
    /// by then (it stands for its duration).
    fn stopped_before(&self, t: i64) -> bool {
        self.ended == Some(false) && self.next.is_none() && self.latest.as_ref().is_none_or(|f| f.until_us <= t)
    }
}

/// A plugin's thread: pairs its inputs, runs its process, applies its policy, restarts it.
struct NodeThread {
    node: NodeRun,
    boundary: u32,
    receivers: Vec<Receiver<Msg>>,
    free: Receiver<Lane>,
    pool: Sender<Lane>,
    fanout: Fanout,
    stats: PluginStats,
    changes: VecDeque<ParamChange>,
    live_changes: Option<Receiver<super::LiveRequest>>,
    live: Option<(Live, usize, Instant)>,
    restarts: VecDeque<Instant>,
    failures_in_a_row: u32,
    /// Past `max_restarts`: the policy handles every further frame.
    disabled: bool,
    /// The number of the last frame it made.
    last_number: u64,
    /// When its last frame was kept for a preview.
    last_preview: Option<Instant>,
    /// Its inputs as messages name them (`plugin "blur"`, `input "logo"`).
    input_names: Vec<String>,
    /// Its plugin's last kept state, for a process that replaces a crashed one.
    state: super::KeptState,
}

impl NodeThread {
    /// Runs until the clock ends; returns the statistics and the process's own copies.
    fn run(mut self, abort: &AtomicBool, fail: &(impl Fn(RunError) + Clone)) -> (PluginStats, u64) {
        let hold = self.serve(abort, fail);
        let copies = self.node.process.copies();
        self.publish(true);
        let NodeThread { node, fanout, stats, .. } = self;
        fanout.end(hold);
        let _ = node.process.shutdown();
        (stats, copies)
    }

    /// Returns whether the node ended holding its last frame (every input did).
    fn serve(&mut self, abort: &AtomicBool, fail: &impl Fn(RunError)) -> bool {
        let count = self.receivers.len();
        let mut inputs: Vec<Pairing> = (0..count).map(|_| Pairing::default()).collect();
        let mut clock = 0;
        let mut made = 0u64;
        loop {
            if abort.load(Ordering::Acquire) {
                return false;
            }
            // The clock's next frame.
            let pairing = &mut inputs[clock];
            let frame = match pairing.next.take() {
                Some(frame) => Some(frame),
                None if pairing.ended.is_some() => None,
                None => match receive(&self.receivers[clock], abort) {
                    Msg::Frame(frame) => Some(frame),
                    // No frame of the clock for this time: none of this node either; the other
                    // inputs still move on to it (their producers must not wait for us).
                    Msg::Gap(t) => {
                        for (k, (input, rx)) in inputs.iter_mut().zip(&self.receivers).enumerate() {
                            if k != clock {
                                input.advance(rx, t, abort);
                            }
                        }
                        if !self.fanout.gap(t) {
                            return false;
                        }
                        continue;
                    }
                    Msg::End { hold } => {
                        pairing.ended = Some(hold);
                        None
                    }
                },
            };
            let Some(frame) = frame else {
                if inputs[clock].ended == Some(false) {
                    return false;
                }
                match (0..count).find(|&k| inputs[k].ended.is_none()) {
                    Some(next) => {
                        clock = next;
                        continue;
                    }
                    None => return true,
                }
            };
            let (t, until_us) = (frame.desc.timestamp_us, frame.until_us);
            // Frames are numbered by the clock's, never back (the clock may change).
            let number = frame.number.max(self.last_number + 1);
            inputs[clock].latest = Some(frame);
            let mut paired = Vec::with_capacity(count);
            for (k, (input, rx)) in inputs.iter_mut().zip(&self.receivers).enumerate() {
                if k != clock {
                    input.advance(rx, t, abort);
                    if input.stopped_before(t) {
                        tracing::warn!(
                            "plugin \"{}\" ends at {:.3} s, where its {} ended (on_end = \"stop\"; \
                             \"hold_last\" keeps its last frame)",
                            self.node.config.name,
                            t as f64 / 1e6,
                            self.input_names[k]
                        );
                        return false;
                    }
                }
                match &input.latest {
                    Some(frame) => paired.push(Arc::clone(frame)),
                    // An input that ended before its first frame: nothing to pair, ever.
                    None if input.ended.is_some() => return false,
                    // One that has none yet (it skipped): no frame for this time.
                    None => {}
                }
            }
            if paired.len() < count {
                if !self.fanout.gap(t) {
                    return false;
                }
                continue;
            }
            made += 1;
            self.apply_changes(t);
            match self.process(made, &paired, Clock { timestamp_us: t, until_us, number }, abort) {
                Ok(Some(out)) => {
                    self.last_number = number;
                    if !self.fanout.send(&out) {
                        return false;
                    }
                }
                Ok(None) => {
                    if !self.fanout.gap(t) {
                        return false;
                    }
                }
                Err(error) => {
                    fail(RunError::Plugin(error));
                    return false;
                }
            }
            self.publish(false);
        }
    }

    /// Runs frame `made` on `inputs` at `clock`'s time; the frame to hand on (none when
    /// skipped), or the error when the policy is `fail`.
    fn process(
        &mut self,
        made: u64,
        inputs: &[FrameRef],
        clock: Clock,
        abort: &AtomicBool,
    ) -> Result<Option<FrameRef>, PluginError> {
        let running = !self.disabled && (self.node.process.pid().is_some() || self.restart());
        let error = match running {
            false => PluginError { plugin: self.node.config.name.clone(), kind: ErrorKind::NotRunning },
            true => {
                let Some(token) = next_slot(&self.free, abort) else { return Ok(None) };
                // The output's metadata is unset until the plugin sets it.
                self.node.view.write_meta(token.slot(), Buffer::Output, None);
                if self.state.due() {
                    self.state.keep(&mut self.node.process, &mut self.stats);
                }
                let named: Vec<(u32, u32, FrameDesc)> =
                    inputs.iter().map(|f| (f.boundary, f.token().slot(), f.desc)).collect();
                let process = &mut self.node.process;
                let started = Instant::now();
                let done =
                    process.submit_node(token.slot(), made, &named).and_then(|ticket| process.receive_band(ticket));
                // Of the shape it declared at start, or refused (a lie: the process goes).
                let output = self.node.output;
                let done = done.and_then(|desc| match (desc.width, desc.height, desc.format) {
                    shape if shape == (output.width, output.height, output.format as u32) => Ok(desc),
                    _ => {
                        process.kill();
                        let why = "the frame is not of the shape it declared at start";
                        Err(PluginError {
                            plugin: self.node.config.name.clone(),
                            kind: Violation::OutputDescriptor(why).into(),
                        })
                    }
                });
                match done {
                    Ok(desc) => {
                        self.stats.latency_us.record(started.elapsed().as_micros() as u64);
                        self.state.frame_done();
                        return Ok(Some(self.output(token, desc, &inputs[0], clock)));
                    }
                    Err(error) => {
                        let _ = self.pool.send(token);
                        self.stats.count_failure(&error.kind);
                        error
                    }
                }
            }
        };
        // A disabled node was reported once, when it was disabled.
        let disabled = !running;
        match self.node.config.on_error {
            OnError::Fail => Err(error),
            OnError::Skip => {
                if !disabled {
                    tracing::warn!("{error}; frame {made} skipped");
                }
                self.stats.skipped += 1;
                Ok(None)
            }
            OnError::Passthrough => {
                if !disabled {
                    tracing::warn!("{error}; frame {made} passed through unchanged");
                }
                self.stats.passed_through += 1;
                Ok(Some(Arc::clone(&inputs[0])))
            }
        }
    }

    /// The frame the plugin made in `token`'s slot, at `clock`'s time and number, with its
    /// metadata: the plugin's when it set some that decodes, else its first input's (written
    /// beside the frame, where the plugins that take it read it).
    fn output(&mut self, token: Lane, desc: FrameDesc, first: &FrameRef, clock: Clock) -> FrameRef {
        let desc = FrameDesc { timestamp_us: clock.timestamp_us, ..desc };
        let number = clock.number;
        self.stats.frames += 1;
        self.failures_in_a_row = 0;
        let mut meta = Vec::new();
        if let Some((live, _, _)) = &self.live {
            let (name, last) = (&self.node.config.name, &mut self.last_preview);
            live.offer_buffer(name, last, &self.node.view, &token, Buffer::Output, &desc);
        }
        let set = self.node.view.read_meta(token.slot(), Buffer::Output, &mut meta)
            && plugin_sdk::FrameMeta::decode(&meta).is_some();
        if !set {
            meta.clone_from(&first.meta);
            self.node.view.write_meta(token.slot(), Buffer::Output, Some(&meta));
        }
        let (boundary, free, until_us) = (self.boundary, self.pool.clone(), clock.until_us);
        Arc::new(Shared { until_us, number, boundary, token: Some(token), desc, meta, free })
    }

    /// Starts the process again after a death, within `max_restarts` per window; false when the
    /// node is disabled (its policy then handles every further frame).
    fn restart(&mut self) -> bool {
        let config = &self.node.config;
        loop {
            let now = Instant::now();
            self.restarts.retain(|&at| now.duration_since(at) < config.restart_window);
            if self.restarts.len() >= config.max_restarts as usize {
                let what = match config.on_error {
                    OnError::Passthrough => "passing its first input's frames through",
                    OnError::Skip | OnError::Fail => "skipping every further frame",
                };
                let (name, restarts, window) = (&config.name, self.restarts.len(), config.restart_window);
                tracing::error!("plugin \"{name}\": disabled after {restarts} restarts within {window:?}; {what}");
                self.disabled = true;
                return false;
            }
            self.restarts.push_back(now);
            self.failures_in_a_row += 1;
            std::thread::sleep(super::stage::restart_backoff(self.failures_in_a_row));
            self.stats.restarts += 1;
            let started = Instant::now();
            match self.node.process.restart() {
                Ok(()) => {
                    self.stats.restart_us.record(started.elapsed().as_micros() as u64);
                    self.state.restore(&mut self.node.process, &mut self.stats);
                    return true;
                }
                Err(error) => tracing::warn!("{error}; restarting again"),
            }
        }
    }

    /// Applies the parameter changes due at `t` (and any sent while running).
    fn apply_changes(&mut self, t: i64) {
        while let Some(request) = self.live_changes.as_ref().and_then(|r| r.try_recv().ok()) {
            match request {
                super::LiveRequest::Params(params) => {
                    let plugin = self.node.config.name.clone();
                    self.changes.push_front(ParamChange { at_us: i64::MIN, plugin, params });
                }
                super::LiveRequest::KeepState => self.state.ask(),
                super::LiveRequest::Swap(_) => {
                    tracing::warn!(
                        "plugin \"{}\": a graph's plugins cannot be swapped while running yet",
                        self.node.config.name
                    );
                }
            }
        }
        while let Some(change) = self.changes.front().filter(|c| c.at_us <= t).cloned() {
            self.changes.pop_front();
            if let Err(e) = self.node.process.set_params(&change.params) {
                tracing::warn!("the change at {} ms was not applied: {e}", change.at_us / 1000);
            }
            self.stats.param_changes += 1;
        }
    }

    fn publish(&mut self, now: bool) {
        if let Some((live, index, last)) = &mut self.live
            && (now || last.elapsed() >= Duration::from_millis(250))
        {
            live.publish(*index, &self.stats);
            *last = Instant::now();
        }
    }
}

/// An output's thread: encodes every frame it gets from its own copy. Returns the sink (to
/// finish or keep aside) and how many frames it wrote.
#[allow(clippy::too_many_arguments)]
fn write_output(
    mut output: OutputRun,
    rx: Receiver<Msg>,
    views: &[Region],
    mut converter: Converter,
    abort: &AtomicBool,
    written: &AtomicU64,
    live: Option<&Live>,
    fail: &impl Fn(RunError),
) -> (Option<Box<dyn Sink>>, u64) {
    let mut pixels = Vec::new();
    let discards = output.sink.discards();
    let mut n = 0u64;
    loop {
        let frame = match receive(&rx, abort) {
            Msg::Frame(frame) => frame,
            Msg::Gap(_) => continue,
            Msg::End { .. } => break,
        };
        if !discards {
            let (desc, number) = (frame.desc, frame.number);
            views[frame.boundary as usize].read_pixels(
                frame.token(),
                Buffer::Input,
                desc.byte_len() as usize,
                &mut pixels,
            );
            drop(frame);
            let format = PixelFormat::from_u32(desc.format).unwrap_or(PixelFormat::Rgba8);
            let result = Frame::new(&pixels, desc.width, desc.height, desc.stride, format, desc.timestamp_us)
                .map_err(|e| MediaError::Frame { frame: n + 1, reason: e.0 })
                .and_then(|view| match output.sink.format_for(format) {
                    to if to == format => output.sink.write(number - 1, &view),
                    to => match converter.convert(&view, to) {
                        Ok(converted) => output.sink.write(number - 1, &converted.view()),
                        Err(reason) => Err(MediaError::Frame { frame: n + 1, reason }),
                    },
                });
            if let Err(e) = result {
                fail(RunError::Media(e));
                return (Some(output.sink), n);
            }
        }
        n += 1;
        written.store(n, Ordering::Relaxed);
        if let Some(live) = live {
            live.frames_out.fetch_add(1, Ordering::Relaxed);
        }
    }
    (Some(output.sink), n)
}
