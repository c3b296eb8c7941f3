//! The shape of a pipeline as a graph: named inputs, plugins that name the nodes they take
//! frames from, and outputs that name the node they write. A config's chain (one input, plugins
//! in a row, one output) is the simplest graph; the graph form adds fan-in (a plugin taking
//! several nodes: an overlay, a transition) and fan-out (one node feeding several plugins or
//! outputs: a preview and a master).
//!
//! This module is the model and its checks, nothing more: [`Graph::build`] resolves the names
//! and defaults a config wrote ([`Declared`]) into indices, refuses every graph that cannot run
//! (a name used twice, a name that is no node, a cycle, a node that feeds nothing, …) with one
//! sentence naming the nodes, and gives the plugins in an order where each comes after every
//! node it takes. It knows nothing of media: the config keeps each input's, plugin's and
//! output's settings at the same index as the graph's node.
//!
//! Checked later, when plugins start, not here (a module says what it takes only once it runs):
//! whether a plugin accepts as many inputs as it is given ([`Graph::check_input_count`], for the
//! graph runtime to call with what the plugin's description declares,
//! `PluginDescription::input_count`), and whether the shapes and pixel formats of the frames
//! that meet at a plugin fit.

use serde::Deserialize;

/// The name of a config's input when there is one and it has no `name`.
pub const DEFAULT_INPUT_NAME: &str = "input";

/// What the graph does when an input ends (`on_end`). The graph ends when an input with
/// [`OnEnd::Stop`] ends, or when every input has ended; so with one input both are the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnEnd {
    /// The graph ends.
    #[default]
    Stop,
    /// The input's last frame stays valid for every later time.
    HoldLast,
}

/// A node whose frames something can take: an input or a plugin, by its index in the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Node {
    Input(usize),
    Plugin(usize),
}

/// A graph as a config writes it, before any check: names and references as given, `None`
/// where a key was left out.
#[derive(Debug, Clone, Default)]
pub struct Declared {
    pub inputs: Vec<DeclaredInput>,
    pub plugins: Vec<DeclaredPlugin>,
    pub outputs: Vec<DeclaredOutput>,
}

#[derive(Debug, Clone, Default)]
pub struct DeclaredInput {
    pub name: Option<String>,
    pub on_end: OnEnd,
}

#[derive(Debug, Clone, Default)]
pub struct DeclaredPlugin {
    pub name: String,
    /// `inputs = [...]`; left out, the previous node.
    pub inputs: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default)]
pub struct DeclaredOutput {
    /// Optional: an output's name is only for messages (nothing can take an output's frames).
    pub name: Option<String>,
    /// `from = "..."`; left out, the last plugin (or the only input when there is none).
    pub from: Option<String>,
}

/// A checked input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputNode {
    pub name: String,
    pub on_end: OnEnd,
}

/// A checked plugin: the nodes it takes, in the order the plugin receives them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginNode {
    pub name: String,
    pub inputs: Vec<Node>,
}

/// A checked output: the node whose frames it writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputNode {
    pub name: Option<String>,
    pub from: Node,
}

/// A checked graph: every name unique, every reference resolved, no cycle, every input and
/// plugin feeding something. Made only by [`Graph::build`] and [`Graph::chain`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Graph {
    inputs: Vec<InputNode>,
    plugins: Vec<PluginNode>,
    outputs: Vec<OutputNode>,
    order: Vec<usize>,
}

impl Graph {
    /// The chain of `plugins` (their names, unique): one input named
    /// [`DEFAULT_INPUT_NAME`], each plugin taking the one before it, one output.
    pub fn chain(plugins: impl IntoIterator<Item = String>) -> Graph {
        let plugins: Vec<PluginNode> =
            plugins.into_iter().enumerate().map(|(i, name)| PluginNode { name, inputs: vec![previous(i)] }).collect();
        let from = previous(plugins.len());
        Graph {
            inputs: vec![InputNode { name: DEFAULT_INPUT_NAME.into(), on_end: OnEnd::Stop }],
            order: (0..plugins.len()).collect(),
            plugins,
            outputs: vec![OutputNode { name: None, from }],
        }
    }

    /// Resolves and checks a declared graph; the error is one sentence naming the nodes.
    pub fn build(declared: Declared) -> Result<Graph, String> {
        let Declared { inputs, plugins, outputs } = declared;
        if inputs.is_empty() {
            return Err("there is no input; add an [input] table".into());
        }
        if outputs.is_empty() {
            return Err("there is no output; add an [output] table".into());
        }
        let several = inputs.len() > 1;
        let inputs_named: Vec<bool> = inputs.iter().map(|input| input.name.is_some()).collect();
        let inputs: Vec<InputNode> = inputs
            .into_iter()
            .enumerate()
            .map(|(i, input)| match input.name {
                Some(name) => Ok(InputNode { name, on_end: input.on_end }),
                None if several => {
                    Err(format!("input #{} has no name; with more than one input each needs one (name = \"…\")", i + 1))
                }
                None => Ok(InputNode { name: DEFAULT_INPUT_NAME.into(), on_end: input.on_end }),
            })
            .collect::<Result<_, _>>()?;
        // The name an unnamed input gets is no name the user chose: a plugin may have it (the
        // plugin wins references to it).
        let implicit_input = !several && inputs_named.iter().all(|named| !named);
        let names = Names { inputs: &inputs, plugins: &plugins, outputs: &outputs, implicit_input };
        names.check_unique()?;

        let mut resolved = Vec::with_capacity(plugins.len());
        for (i, plugin) in plugins.iter().enumerate() {
            let at = format!("plugin \"{}\"", plugin.name);
            let taken = match &plugin.inputs {
                None => vec![previous(i)],
                Some(list) if list.is_empty() => {
                    return Err(format!(
                        "{at} has inputs = []; name at least one node, or leave inputs out to take the previous \
                         node's frames"
                    ));
                }
                Some(list) => {
                    let mut taken = Vec::with_capacity(list.len());
                    for (k, name) in list.iter().enumerate() {
                        if list[..k].contains(name) {
                            return Err(format!("{at} lists \"{name}\" twice in inputs; list each node once"));
                        }
                        taken.push(names.node(name, &at, "takes")?);
                    }
                    taken
                }
            };
            resolved.push(PluginNode { name: plugin.name.clone(), inputs: taken });
        }
        let mut outs = Vec::with_capacity(outputs.len());
        for (i, output) in outputs.iter().enumerate() {
            let at = output_label(i, output.name.as_deref());
            let from = match &output.from {
                Some(name) => names.node(name, &at, "takes from =")?,
                None if !plugins.is_empty() => Node::Plugin(plugins.len() - 1),
                None if !several => Node::Input(0),
                None => {
                    let list: Vec<&str> = inputs.iter().map(|input| input.name.as_str()).collect();
                    return Err(format!(
                        "{at} has no from, and with no plugin and {} inputs ({}) it could take any; say which \
                         (from = \"…\")",
                        inputs.len(),
                        list.join(", ")
                    ));
                }
            };
            outs.push(OutputNode { name: output.name.clone(), from });
        }
        let order = topological_order(&resolved)?;
        let graph = Graph { inputs, plugins: resolved, outputs: outs, order };
        graph.check_everything_feeds()?;
        Ok(graph)
    }

    pub fn inputs(&self) -> &[InputNode] {
        &self.inputs
    }

    pub fn plugins(&self) -> &[PluginNode] {
        &self.plugins
    }

    pub fn outputs(&self) -> &[OutputNode] {
        &self.outputs
    }

    /// The plugins' indices, each after every plugin it takes frames from (in file order where
    /// that allows).
    pub fn order(&self) -> &[usize] {
        &self.order
    }

    pub fn name(&self, node: Node) -> &str {
        match node {
            Node::Input(i) => &self.inputs[i].name,
            Node::Plugin(i) => &self.plugins[i].name,
        }
    }

    /// What takes `node`'s frames: the plugins (by index) and the outputs (by index).
    pub fn consumers(&self, node: Node) -> (Vec<usize>, Vec<usize>) {
        let plugins = (0..self.plugins.len()).filter(|&p| self.plugins[p].inputs.contains(&node)).collect();
        let outputs = (0..self.outputs.len()).filter(|&o| self.outputs[o].from == node).collect();
        (plugins, outputs)
    }

    /// Whether the chain runtime can run this graph: one input, one output, each plugin taking
    /// only the one before it in the file (the first, the input), the output the last.
    pub fn is_chain(&self) -> bool {
        self.not_a_chain().is_none()
    }

    /// Why this graph is not a chain, in a few words (`2 inputs, 2 outputs`), if it is not.
    pub fn not_a_chain(&self) -> Option<String> {
        let (inputs, outputs) = (self.inputs.len(), self.outputs.len());
        if inputs != 1 || outputs != 1 {
            return Some(format!("{}, {}", count(inputs, "input"), count(outputs, "output")));
        }
        if let Some((i, plugin)) = self.plugins.iter().enumerate().find(|(i, p)| p.inputs != [previous(*i)]) {
            let taken: Vec<&str> = plugin.inputs.iter().map(|&n| self.name(n)).collect();
            let before = if i == 0 { "the input" } else { "the plugin before it" };
            return Some(format!("plugin \"{}\" takes {}, not only {before}", plugin.name, taken.join(", ")));
        }
        let from = self.outputs[0].from;
        (from != previous(self.plugins.len()))
            .then(|| format!("the output takes {}, not the last plugin", self.name(from)))
    }

    /// The runtime's check, once plugin `plugin` has started and said which inputs it takes
    /// (their names): one sentence when the graph gives it another number.
    pub fn check_input_count(&self, plugin: usize, takes: &[&str]) -> Result<(), String> {
        let node = &self.plugins[plugin];
        if node.inputs.len() == takes.len() {
            return Ok(());
        }
        let given: Vec<&str> = node.inputs.iter().map(|&n| self.name(n)).collect();
        Err(format!(
            "plugin \"{}\" is given {} ({}), but it takes {} ({})",
            node.name,
            count(given.len(), "input"),
            given.join(", "),
            takes.len(),
            takes.join(", ")
        ))
    }

    /// Every input and plugin feeds a plugin or an output.
    fn check_everything_feeds(&self) -> Result<(), String> {
        let nodes = (0..self.inputs.len()).map(Node::Input).chain((0..self.plugins.len()).map(Node::Plugin));
        for node in nodes {
            let (plugins, outputs) = self.consumers(node);
            if plugins.is_empty() && outputs.is_empty() {
                let kind = if matches!(node, Node::Input(_)) { "input" } else { "plugin" };
                return Err(format!(
                    "{kind} \"{}\" feeds nothing: no plugin or output takes its frames; use it (in a plugin's \
                     inputs or an output's from) or remove it",
                    self.name(node)
                ));
            }
        }
        Ok(())
    }
}

/// The node before plugin `i` in a chain: the plugin before it, or the (first) input.
fn previous(i: usize) -> Node {
    if i == 0 { Node::Input(0) } else { Node::Plugin(i - 1) }
}

fn count(n: usize, noun: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}

fn output_label(i: usize, name: Option<&str>) -> String {
    match name {
        Some(name) => format!("output \"{name}\""),
        None => format!("output #{}", i + 1),
    }
}

/// Whether `name` may name a node: letters, digits, `-` and `_`, not empty.
fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The names of a declared graph, for resolving references.
struct Names<'a> {
    inputs: &'a [InputNode],
    plugins: &'a [DeclaredPlugin],
    outputs: &'a [DeclaredOutput],
    /// The one input has the default name, not one from the config.
    implicit_input: bool,
}

impl Names<'_> {
    /// Every name with what it names (`input #1`, `plugin #2`, `output #1`), in file order.
    fn all(&self) -> Vec<(&str, String)> {
        let inputs = self
            .inputs
            .iter()
            .enumerate()
            .filter(|_| !self.implicit_input)
            .map(|(i, n)| (n.name.as_str(), format!("input #{}", i + 1)));
        let plugins = self.plugins.iter().enumerate().map(|(i, p)| (p.name.as_str(), format!("plugin #{}", i + 1)));
        let outputs = self
            .outputs
            .iter()
            .enumerate()
            .filter_map(|(i, o)| Some((o.name.as_deref()?, format!("output #{}", i + 1))));
        inputs.chain(plugins).chain(outputs).collect()
    }

    fn check_unique(&self) -> Result<(), String> {
        let all = self.all();
        for (k, (name, what)) in all.iter().enumerate() {
            if !valid_name(name) {
                return Err(format!("{what} (\"{name}\"): name must be non-empty letters, digits, '-' or '_'"));
            }
            if let Some((_, first)) = all[..k].iter().find(|(earlier, _)| earlier == name) {
                return Err(format!(
                    "the name \"{name}\" is used twice ({first} and {what}); inputs, plugins and outputs share \
                     one namespace, so each name must be unique"
                ));
            }
        }
        Ok(())
    }

    /// The node `name` names, for `at` (`plugin "mix"`), which `verb` it (`takes`).
    fn node(&self, name: &str, at: &str, verb: &str) -> Result<Node, String> {
        if let Some(i) = self.plugins.iter().position(|p| p.name == name) {
            return Ok(Node::Plugin(i));
        }
        if let Some(i) = self.inputs.iter().position(|n| n.name == name) {
            return Ok(Node::Input(i));
        }
        if self.outputs.iter().any(|o| o.name.as_deref() == Some(name)) {
            return Err(format!(
                "{at} {verb} \"{name}\", which is an output; only inputs and plugins give frames to take"
            ));
        }
        let known: Vec<String> =
            self.inputs.iter().map(|n| n.name.clone()).chain(self.plugins.iter().map(|p| p.name.clone())).collect();
        let suggestion =
            plugin_host::schema::closest(name, &known).map(|s| format!(" (did you mean \"{s}\"?)")).unwrap_or_default();
        Err(format!(
            "{at} {verb} \"{name}\", which is not the name of an input or a plugin{suggestion}; the names are: {}",
            known.join(", ")
        ))
    }
}

/// The plugins in an order where each follows every plugin it takes (the earliest in the file
/// first among those ready), or the sentence naming a cycle.
fn topological_order(plugins: &[PluginNode]) -> Result<Vec<usize>, String> {
    let mut done = vec![false; plugins.len()];
    let mut order = Vec::with_capacity(plugins.len());
    let ready = |p: &PluginNode, done: &[bool]| {
        p.inputs.iter().all(|n| match n {
            Node::Input(_) => true,
            Node::Plugin(q) => done[*q],
        })
    };
    while order.len() < plugins.len() {
        match (0..plugins.len()).find(|&p| !done[p] && ready(&plugins[p], &done)) {
            Some(p) => {
                done[p] = true;
                order.push(p);
            }
            None => return Err(describe_cycle(plugins, &done)),
        }
    }
    Ok(order)
}

/// A cycle among the plugins not `done` (each of them takes another of them), named in the
/// direction frames flow, from its earliest plugin in the file: `a cycle: blur -> mix -> blur`.
fn describe_cycle(plugins: &[PluginNode], done: &[bool]) -> String {
    // Walk against the flow, from each plugin to a plugin it takes that is not done, until a
    // plugin comes again: from there on the walk is the cycle.
    let waiting = |p: usize| {
        plugins[p].inputs.iter().find_map(|n| match n {
            Node::Plugin(q) if !done[*q] => Some(*q),
            _ => None,
        })
    };
    let mut walk = vec![done.iter().position(|d| !d).expect("a plugin left")];
    let start = loop {
        let next = waiting(*walk.last().expect("not empty")).expect("a plugin not done waits on another");
        if let Some(at) = walk.iter().position(|&p| p == next) {
            break at;
        }
        walk.push(next);
    };
    let mut cycle = walk.split_off(start);
    cycle.reverse();
    let first = cycle.iter().enumerate().min_by_key(|(_, p)| **p).map_or(0, |(i, _)| i);
    cycle.rotate_left(first);
    cycle.push(cycle[0]);
    let names: Vec<&str> = cycle.iter().map(|&p| plugins[p].name.as_str()).collect();
    format!(
        "a cycle: {} (each takes the frames of the one before it); frames must flow from the inputs to the \
         outputs without coming back",
        names.join(" -> ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(name: &str) -> DeclaredInput {
        DeclaredInput { name: Some(name.into()), on_end: OnEnd::Stop }
    }

    fn plugin(name: &str, inputs: Option<&[&str]>) -> DeclaredPlugin {
        DeclaredPlugin { name: name.into(), inputs: inputs.map(|list| list.iter().map(|s| s.to_string()).collect()) }
    }

    fn output(name: Option<&str>, from: Option<&str>) -> DeclaredOutput {
        DeclaredOutput { name: name.map(Into::into), from: from.map(Into::into) }
    }

    fn build(inputs: Vec<DeclaredInput>, plugins: Vec<DeclaredPlugin>, outputs: Vec<DeclaredOutput>) -> Graph {
        Graph::build(Declared { inputs, plugins, outputs }).unwrap()
    }

    fn refused(inputs: Vec<DeclaredInput>, plugins: Vec<DeclaredPlugin>, outputs: Vec<DeclaredOutput>) -> String {
        Graph::build(Declared { inputs, plugins, outputs }).unwrap_err()
    }

    #[test]
    fn a_chain_written_without_names_is_the_chain() {
        let graph =
            build(vec![DeclaredInput::default()], vec![plugin("a", None), plugin("b", None)], vec![output(None, None)]);
        assert_eq!(graph, Graph::chain(["a".to_string(), "b".to_string()]));
        assert_eq!(graph.inputs()[0].name, "input");
        assert_eq!(graph.plugins()[1].inputs, [Node::Plugin(0)]);
        assert_eq!(graph.outputs()[0].from, Node::Plugin(1));
        assert_eq!(graph.order(), [0, 1]);
        assert!(graph.is_chain());
        // No plugins: the output takes the input.
        let bare = build(vec![DeclaredInput::default()], vec![], vec![output(None, None)]);
        assert_eq!(bare.outputs()[0].from, Node::Input(0));
        assert!(bare.is_chain());
        // Naming what the defaults would give is still a chain; on_end does not matter with one input.
        let spelled = build(
            vec![DeclaredInput { name: Some("cam".into()), on_end: OnEnd::HoldLast }],
            vec![plugin("a", Some(&["cam"])), plugin("b", Some(&["a"]))],
            vec![output(Some("out"), Some("b"))],
        );
        assert!(spelled.is_chain());
    }

    #[test]
    fn fan_out_and_fan_in_resolve_with_defaults() {
        // main ─► blur ─► mix ◄─ logo;  mix ─► output 1;  main ─► output 2 (the preview).
        let graph = build(
            vec![input("main"), input("logo")],
            vec![plugin("blur", None), plugin("mix", Some(&["blur", "logo"]))],
            vec![output(None, None), output(Some("preview"), Some("main"))],
        );
        let p = graph.plugins();
        assert_eq!(p[0].inputs, [Node::Input(0)], "the first plugin takes the first input");
        assert_eq!(p[1].inputs, [Node::Plugin(0), Node::Input(1)], "in the order listed");
        assert_eq!(graph.outputs()[0].from, Node::Plugin(1), "the last plugin");
        assert_eq!(graph.outputs()[1].from, Node::Input(0));
        assert_eq!(graph.order(), [0, 1]);
        assert_eq!(graph.consumers(Node::Input(0)), (vec![0], vec![1]), "main feeds blur and the preview");
        assert_eq!(graph.consumers(Node::Input(1)), (vec![1], vec![]));
        assert_eq!(graph.name(Node::Plugin(1)), "mix");
        assert_eq!(graph.not_a_chain().as_deref(), Some("2 inputs, 2 outputs"));
        assert!(!graph.is_chain());
    }

    #[test]
    fn inputs_default_to_the_previous_node() {
        // a takes logo; b, saying nothing, takes a (not the first input).
        let graph = build(
            vec![input("main"), input("logo")],
            vec![plugin("a", Some(&["logo"])), plugin("b", None), plugin("c", Some(&["main", "b"]))],
            vec![output(None, None)],
        );
        assert_eq!(graph.plugins()[1].inputs, [Node::Plugin(0)]);
        assert_eq!(graph.outputs()[0].from, Node::Plugin(2));
    }

    #[test]
    fn the_order_puts_every_plugin_after_what_it_takes() {
        // Declared consumers first: d takes c and b, which take a, which takes main.
        let graph = build(
            vec![input("main")],
            vec![
                plugin("d", Some(&["c", "b"])),
                plugin("c", Some(&["a"])),
                plugin("b", Some(&["a"])),
                plugin("a", Some(&["main"])),
            ],
            vec![output(None, Some("d"))],
        );
        assert_eq!(graph.order(), [3, 1, 2, 0]);
        assert_eq!(graph.consumers(Node::Plugin(3)), (vec![1, 2], vec![]), "a fans out to c and b");
        assert_eq!(
            graph.not_a_chain().as_deref(),
            Some("plugin \"d\" takes c, b, not only the input"),
            "one input and one output, but not a chain"
        );
    }

    #[test]
    fn each_refusal_is_one_sentence_naming_the_nodes() {
        let main = || vec![input("main"), input("logo")];
        let cases: Vec<(String, &str)> = vec![
            (
                refused(vec![input("main"), input("main")], vec![], vec![output(None, Some("main"))]),
                "the name \"main\" is used twice (input #1 and input #2); inputs, plugins and outputs share one \
                 namespace, so each name must be unique",
            ),
            (
                refused(main(), vec![plugin("logo", None)], vec![output(None, None)]),
                "the name \"logo\" is used twice (input #2 and plugin #1); inputs, plugins and outputs share one \
                 namespace, so each name must be unique",
            ),
            (
                refused(vec![input("main")], vec![plugin("a", None)], vec![output(Some("a"), None)]),
                "the name \"a\" is used twice (plugin #1 and output #1); inputs, plugins and outputs share one \
                 namespace, so each name must be unique",
            ),
            (
                refused(vec![input("main"), DeclaredInput::default()], vec![], vec![output(None, Some("main"))]),
                "input #2 has no name; with more than one input each needs one (name = \"…\")",
            ),
            (
                refused(vec![input("my input")], vec![], vec![output(None, None)]),
                "input #1 (\"my input\"): name must be non-empty letters, digits, '-' or '_'",
            ),
            (
                refused(main(), vec![plugin("mix", Some(&["main", "lgo"]))], vec![output(None, None)]),
                "plugin \"mix\" takes \"lgo\", which is not the name of an input or a plugin (did you mean \
                 \"logo\"?); the names are: main, logo, mix",
            ),
            (
                refused(main(), vec![plugin("mix", Some(&["main", "title"]))], vec![output(None, None)]),
                "plugin \"mix\" takes \"title\", which is not the name of an input or a plugin; the names are: \
                 main, logo, mix",
            ),
            (
                refused(main(), vec![plugin("mix", Some(&["main", "logo"]))], vec![output(None, Some("mx"))]),
                "output #1 takes from = \"mx\", which is not the name of an input or a plugin (did you mean \
                 \"mix\"?); the names are: main, logo, mix",
            ),
            (
                refused(
                    main(),
                    vec![plugin("blur", Some(&["mix"])), plugin("mix", Some(&["main", "logo", "blur"]))],
                    vec![output(None, None)],
                ),
                "a cycle: blur -> mix -> blur (each takes the frames of the one before it); frames must flow from \
                 the inputs to the outputs without coming back",
            ),
            (
                refused(vec![input("main")], vec![plugin("echo", Some(&["main", "echo"]))], vec![output(None, None)]),
                "a cycle: echo -> echo (each takes the frames of the one before it); frames must flow from the \
                 inputs to the outputs without coming back",
            ),
            (
                // Three around, and one downstream of them that is not part of the cycle.
                refused(
                    vec![input("main")],
                    vec![
                        plugin("after", Some(&["c"])),
                        plugin("a", Some(&["main", "c"])),
                        plugin("b", Some(&["a"])),
                        plugin("c", Some(&["b"])),
                    ],
                    vec![output(None, Some("after"))],
                ),
                "a cycle: a -> b -> c -> a (each takes the frames of the one before it); frames must flow from the \
                 inputs to the outputs without coming back",
            ),
            (
                refused(main(), vec![plugin("a", None)], vec![output(None, None)]),
                "input \"logo\" feeds nothing: no plugin or output takes its frames; use it (in a plugin's inputs \
                 or an output's from) or remove it",
            ),
            (
                refused(
                    vec![input("main")],
                    vec![plugin("a", None), plugin("b", Some(&["main"]))],
                    vec![output(None, None)],
                ),
                "plugin \"a\" feeds nothing: no plugin or output takes its frames; use it (in a plugin's inputs or \
                 an output's from) or remove it",
            ),
            (
                refused(
                    vec![input("main")],
                    vec![],
                    vec![output(Some("master"), None), output(Some("preview"), Some("master"))],
                ),
                "output \"preview\" takes from = \"master\", which is an output; only inputs and plugins give frames \
                 to take",
            ),
            (
                refused(vec![input("main")], vec![plugin("a", Some(&["master"]))], vec![output(Some("master"), None)]),
                "plugin \"a\" takes \"master\", which is an output; only inputs and plugins give frames to take",
            ),
            (
                refused(main(), vec![plugin("mix", Some(&["main", "logo", "main"]))], vec![output(None, None)]),
                "plugin \"mix\" lists \"main\" twice in inputs; list each node once",
            ),
            (
                refused(vec![input("main")], vec![plugin("mix", Some(&[]))], vec![output(None, None)]),
                "plugin \"mix\" has inputs = []; name at least one node, or leave inputs out to take the previous \
                 node's frames",
            ),
            (
                refused(main(), vec![], vec![output(None, Some("main")), output(None, None)]),
                "output #2 has no from, and with no plugin and 2 inputs (main, logo) it could take any; say which \
                 (from = \"…\")",
            ),
            (refused(vec![], vec![], vec![output(None, None)]), "there is no input; add an [input] table"),
            (refused(vec![input("main")], vec![], vec![]), "there is no output; add an [output] table"),
        ];
        for (got, expected) in cases {
            assert_eq!(got, expected);
        }
    }

    #[test]
    fn the_input_count_check_names_what_a_plugin_is_given() {
        let graph = build(
            vec![input("main"), input("logo")],
            vec![plugin("mix", Some(&["main", "logo"]))],
            vec![output(None, None)],
        );
        assert_eq!(graph.check_input_count(0, &["background", "foreground"]), Ok(()));
        assert_eq!(
            graph.check_input_count(0, &["input"]),
            Err("plugin \"mix\" is given 2 inputs (main, logo), but it takes 1 (input)".into())
        );
        assert_eq!(
            graph.check_input_count(0, &["a", "b", "c"]),
            Err("plugin \"mix\" is given 2 inputs (main, logo), but it takes 3 (a, b, c)".into())
        );
    }

    #[test]
    fn on_end_takes_its_two_spellings_only() {
        #[derive(Deserialize)]
        struct Table {
            on_end: OnEnd,
        }
        let parse = |text: &str| toml::from_str::<Table>(text).map(|t| t.on_end).map_err(|e| e.message().to_string());
        assert_eq!(parse("on_end = \"stop\""), Ok(OnEnd::Stop));
        assert_eq!(parse("on_end = \"hold_last\""), Ok(OnEnd::HoldLast));
        let err = parse("on_end = \"pause\"").unwrap_err();
        assert!(err.contains("`pause`") && err.contains("`stop` or `hold_last`"), "{err}");
    }
}
