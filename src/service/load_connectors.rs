//! The checks on how pipelines use connectors, once every pipeline is read:
//! each connector is used on both sides, joins pipelines of signals it
//! connects, and no connectors make a cycle of pipelines. Each mistake is one
//! error, at the place to change.

use super::*;

impl Loader {
    /// A connector may not share its ID with a receiver or an exporter: the
    /// pipelines' lists name both kinds (the Collector refuses it too).
    pub(super) fn ambiguous_connector_ids(
        &mut self,
        connectors: &DefinedMap,
        receivers: &DefinedMap,
        exporters: &DefinedMap,
    ) {
        for (cid, def) in connectors {
            for (other, kind) in [(receivers, "receiver"), (exporters, "exporter")] {
                if other.contains_key(cid) {
                    self.err(
                        join("connectors", &cid.to_string()),
                        def.line,
                        format!("ambiguous ID: \"{cid}\" is both a {kind} and a connector"),
                        Some(format!("rename one of them, e.g. the connector to \"{cid}/connector\"")),
                    );
                }
            }
        }
    }

    /// Checks how the pipelines use every connector (see the module doc).
    pub(super) fn connections(
        &mut self,
        defined: &DefinedMap,
        compiled: &Compiled<dyn ConnectorSpec>,
        pipelines: &[PipelineId],
    ) {
        let uses = std::mem::take(&mut self.uses);
        for (cid, def) in defined {
            if def.ty.is_none() {
                continue; // an unknown type, reported where it is defined
            }
            let exp: Vec<&ConnectorUse> = uses.iter().filter(|u| u.connector == *cid && u.exporter).collect();
            let rec: Vec<&ConnectorUse> = uses.iter().filter(|u| u.connector == *cid && !u.exporter).collect();
            let at = join("connectors", &cid.to_string());
            let pairs = compiled.get(cid).map(|c| c.pairs());
            let names =
                |list: &[&ConnectorUse]| list.iter().map(|u| u.pipeline.to_string()).collect::<Vec<_>>().join(", ");
            let signals = |side: fn(&(Signal, Signal)) -> Signal| {
                let mut s: Vec<&str> = pairs.unwrap_or_default().iter().map(|p| side(p).as_str()).collect();
                s.dedup();
                s.join(" or ")
            };
            match (exp.is_empty(), rec.is_empty()) {
                (true, true) => {
                    self.err(
                        at,
                        def.line,
                        format!("connector \"{cid}\" is defined but no pipeline uses it"),
                        Some(
                            "list it among the exporters of one pipeline and the receivers of another, or remove it"
                                .into(),
                        ),
                    );
                    continue;
                }
                (false, true) => {
                    self.err(
                        at,
                        def.line,
                        format!("connector \"{cid}\" is an exporter of {} but no pipeline's receiver", names(&exp)),
                        Some(format!(
                            "add it to the receivers of the {} pipeline that takes what it emits",
                            signals(|p| p.1)
                        )),
                    );
                    continue;
                }
                (true, false) => {
                    self.err(
                        at,
                        def.line,
                        format!("connector \"{cid}\" is a receiver of {} but no pipeline's exporter", names(&rec)),
                        Some(format!(
                            "add it to the exporters of the {} pipeline it takes data from",
                            signals(|p| p.0)
                        )),
                    );
                    continue;
                }
                (false, false) => {}
            }
            let Some(pairs) = pairs else { continue }; // its settings were reported
            let before = self.errors.len();
            let mut fed_wrong = false;
            for r in &rec {
                let to = r.pipeline.signal;
                if !pairs.iter().any(|p| p.1 == to) {
                    let message = format!(
                        "connector \"{cid}\" cannot feed a {to} pipeline: it connects {}",
                        describe_pairs(pairs)
                    );
                    self.err(&r.path, r.line, message, None);
                    fed_wrong = true;
                } else if !exp.iter().any(|e| pairs.contains(&(e.pipeline.signal, to))) {
                    let from: Vec<&str> = pairs.iter().filter(|p| p.1 == to).map(|p| p.0.as_str()).collect();
                    let from = from.join(" or ");
                    self.err(
                        &r.path,
                        r.line,
                        format!(
                            "connector \"{cid}\" feeds a {to} pipeline from {from} pipelines, but no {from} pipeline \
                             lists it as an exporter"
                        ),
                        Some(format!("it is an exporter of {}; it connects {}", names(&exp), describe_pairs(pairs))),
                    );
                    fed_wrong = true;
                }
            }
            for e in &exp {
                let from = e.pipeline.signal;
                if !pairs.iter().any(|p| p.0 == from) {
                    let message = format!(
                        "connector \"{cid}\" cannot take data from a {from} pipeline: it connects {}",
                        describe_pairs(pairs)
                    );
                    self.err(&e.path, e.line, message, None);
                } else if !fed_wrong && !rec.iter().any(|r| pairs.contains(&(from, r.pipeline.signal))) {
                    let to: Vec<&str> = pairs.iter().filter(|p| p.0 == from).map(|p| p.1.as_str()).collect();
                    let to = to.join(" or ");
                    self.err(
                        &e.path,
                        e.line,
                        format!(
                            "connector \"{cid}\" connects {from} to {to}, but no {to} pipeline lists it as a receiver"
                        ),
                        Some(format!("it is a receiver of {}", names(&rec))),
                    );
                }
            }
            if self.errors.len() == before {
                if let Some(spec) = compiled.get(cid) {
                    let exporters: Vec<PipelineId> = exp.iter().map(|u| u.pipeline.clone()).collect();
                    let receivers: Vec<PipelineId> = rec.iter().map(|u| u.pipeline.clone()).collect();
                    let joins = Joins { exporters: &exporters, receivers: &receivers, pipelines };
                    self.errors.extend(spec.check_joins(&joins));
                }
            }
        }
        self.cycles(&uses, compiled);
    }

    /// Pipelines joined by connectors may not make a cycle: data would go
    /// round for ever. One error per cycle found, at the connector that
    /// closes it.
    fn cycles(&mut self, uses: &[ConnectorUse], compiled: &Compiled<dyn ConnectorSpec>) {
        // pipeline -> [(next pipeline, the exporter use that leads there)]
        let mut edges: BTreeMap<&PipelineId, Vec<(&PipelineId, &ConnectorUse)>> = BTreeMap::new();
        for e in uses.iter().filter(|u| u.exporter) {
            let Some(pairs) = compiled.get(&e.connector).map(|c| c.pairs()) else { continue };
            for r in uses.iter().filter(|u| !u.exporter && u.connector == e.connector) {
                if pairs.contains(&(e.pipeline.signal, r.pipeline.signal)) {
                    edges.entry(&e.pipeline).or_default().push((&r.pipeline, e));
                }
            }
        }
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            Open,
            Done,
        }
        let mut marks: BTreeMap<&PipelineId, Mark> = BTreeMap::new();
        let starts: Vec<&PipelineId> = edges.keys().copied().collect();
        for start in starts {
            if marks.contains_key(start) {
                continue;
            }
            // Iterative depth-first search; `stack` holds (pipeline, next edge index, the use that led here).
            let mut stack: Vec<(&PipelineId, usize, Option<&ConnectorUse>)> = vec![(start, 0, None)];
            marks.insert(start, Mark::Open);
            while let Some((node, i, _)) = stack.last().copied() {
                let next = edges.get(node).and_then(|list| list.get(i)).copied();
                let Some((to, via)) = next else {
                    marks.insert(node, Mark::Done);
                    stack.pop();
                    continue;
                };
                if let Some(top) = stack.last_mut() {
                    top.1 += 1;
                }
                match marks.get(to) {
                    None => {
                        marks.insert(to, Mark::Open);
                        stack.push((to, 0, Some(via)));
                    }
                    Some(Mark::Open) => {
                        // The cycle: from `to` down the stack, then `via` back to `to`.
                        let from = stack.iter().position(|(p, _, _)| *p == to).unwrap_or(0);
                        let mut steps: Vec<&ConnectorUse> =
                            stack[from + 1..].iter().filter_map(|(_, _, u)| *u).collect();
                        steps.push(via);
                        let nodes: Vec<&PipelineId> = stack[from..].iter().map(|(p, _, _)| *p).collect();
                        let mut parts = Vec::new();
                        for (k, step) in steps.iter().enumerate() {
                            let target = nodes.get(k + 1).copied().unwrap_or(to);
                            let source = if k == 0 { format!("pipeline {}", nodes[0]) } else { nodes[k].to_string() };
                            parts.push(format!(
                                "{source} exports to connector {}, which feeds {target}",
                                step.connector
                            ));
                        }
                        let text = parts.join("; ");
                        self.err(
                            &via.path,
                            via.line,
                            format!("connectors make a cycle of pipelines: {text}"),
                            Some(
                                "a pipeline may not receive, directly or through other pipelines, what it exports \
                                 (the Collector refuses cycles too)"
                                    .into(),
                            ),
                        );
                    }
                    Some(Mark::Done) => {}
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "load_connectors_tests.rs"]
mod tests;
