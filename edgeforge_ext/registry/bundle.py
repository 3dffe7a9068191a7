"""Bundles for the air gap: `images save` (registries -> an OCI layout) and `images load` (an OCI layout ->
the registry the Edge host pulls from).

A bundle is an OCI image layout (layout.py). Its index.json lists each image under its original reference
(`org.opencontainers.image.ref.name` and containerd's `io.containerd.image.name`), and the things stored
beside it (cosign tags, OCI referrers) under the accessory annotations below. A differential bundle
(`--since` an earlier bundle or edgeforge.lock) holds every manifest (a few KiB each, so it describes
everything it covers) and only the config and layer blobs the earlier one does not cover; loading it into
a registry that holds the earlier one finds those there (mounted, never sent).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeforge_ext.errors import RegistryError
from edgeforge_ext.registry.blobsend import TransferStats
from edgeforge_ext.registry.client import BlobMissing, Clients, RegistryClient
from edgeforge_ext.registry.copying import Copy, CopyResult, judge, run_copies
from edgeforge_ext.registry.graph import Accessory, ImageGraph, fetch_graph
from edgeforge_ext.registry.images import ImageRef, SourceImage, parse_ref
from edgeforge_ext.registry.layout import BundleError, LayoutReader, LayoutWriter, blob_name, layout_index
from edgeforge_ext.registry.manifests import Descriptor, Manifest, parse_manifest
from edgeforge_ext.registry.streams import VerifyingReader, copy_verified

REF_NAME = "org.opencontainers.image.ref.name"
CONTAINERD_NAME = "io.containerd.image.name"
ACCESSORY_KIND = "io.edgeforge.accessory.kind"
ACCESSORY_SUBJECT = "io.edgeforge.accessory.subject"
SINCE = "io.edgeforge.bundle.since"  # on index.json: what a differential bundle leaves out
ROLE = "io.edgeforge.image.role"  # "build-input": the build pulls it (load sends it to build.inputs_registry)
BUILD_INPUT = "build-input"


@dataclass(frozen=True)
class SaveResult:
    source: str
    status: str  # "saved", "failed"
    digest: str | None = None
    detail: str = ""


# --- what a bundle (or a lock) covers ------------------------------------------------------------


def graph_from_layout(reader: LayoutReader, digest: str, where: str) -> ImageGraph:
    """An image's graph from the manifests a bundle holds."""
    root = _manifest(reader, digest, where)
    graph = ImageGraph(root)
    for child in root.children:
        graph.manifests[child.digest] = _manifest(reader, child.digest, where)
    graph.manifests[root.digest] = root
    return graph


def _manifest(reader: LayoutReader, digest: str, where: str) -> Manifest:
    body = reader.read_bytes(blob_name(digest))
    if body is None:
        raise BundleError(f"{where}: manifest {digest} is not in {reader.path}")
    import hashlib

    if "sha256:" + hashlib.sha256(body).hexdigest() != digest:
        raise BundleError(f"{where}: manifest {digest} in {reader.path} does not match its digest")
    return parse_manifest(body, "", digest, where)


def covered(graph: ImageGraph) -> set[str]:
    """Every digest an image covers: manifests and blobs, its accessories' too."""
    return set(graph.all_manifests()) | set(graph.all_blobs())


def bundle_covers(path: Path) -> set[str]:
    """What an earlier bundle covers (a differential one too: its manifests name what it left out)."""
    with LayoutReader(path) as reader:
        out: set[str] = set()
        for entry in reader.index()["manifests"]:
            graph = graph_from_layout(reader, entry["digest"], f"{path} {_name(entry)}")
            out |= covered(graph)
        return out


def images_cover(images: dict[str, str], clients: Clients) -> set[str]:
    """What the images a lock records (reference -> manifest digest) cover, read from their registries by
    digest (a manifest by digest never changes)."""
    out: set[str] = set()
    for ref_text, digest in images.items():
        ref = parse_ref(ref_text)
        client = clients.get(ref.domain)
        graph = fetch_graph(client, ref.path, digest)  # with its signatures and referrers, as saved
        if graph is None:
            raise RegistryError(f"--since: {ref.name}@{digest} (recorded in the lock) is no longer at {ref.domain}",
                                hint="give the earlier bundle instead (--since BUNDLE)")
        out |= covered(graph)
    return out


def _name(entry: dict[str, Any]) -> str:
    annotations = entry.get("annotations") or {}
    return str(annotations.get(REF_NAME) or entry.get("digest"))


# --- save ----------------------------------------------------------------------------------------


def save_bundle(images: Sequence[ImageRef], clients: Clients, path: Path, *, since: set[str] | None = None,
                workers: int = 8, stats: TransferStats | None = None, build_inputs: set[str] | None = None,
                on_done: Callable[[SaveResult], None] | None = None) -> list[SaveResult]:
    """Write `images` (every platform, with signatures and referrers) into the bundle at `path`; those in
    `build_inputs` (references) are marked as the build's own inputs.

    All or nothing: when an image cannot be read the bundle is not written (a directory keeps the blobs it
    completed, so a rerun fetches only what is missing). Blobs `since` covers are left out."""
    stats = stats or TransferStats()
    graphs: dict[int, ImageGraph] = {}
    results: dict[int, SaveResult] = {}
    with ThreadPoolExecutor(max_workers=max(1, min(16, len(images) or 1))) as pool:
        futures = {pool.submit(_fetch, clients, ref): i for i, ref in enumerate(images)}
        for future in as_completed(futures):
            i = futures[future]
            outcome = future.result()
            if isinstance(outcome, ImageGraph):
                graphs[i] = outcome
            else:
                results[i] = SaveResult(str(images[i]), "failed", None, outcome)
                if on_done:
                    on_done(results[i])
    if results:
        return [results.get(i) or SaveResult(str(images[i]), "failed", graphs[i].digest, "not saved: the bundle "
                                             "would miss the images above") for i in range(len(images))]
    writer = LayoutWriter(path)
    try:
        problems = _write_objects(writer, images, graphs, clients, since or set(), workers, stats)
        if problems:
            raise RegistryError(f"the bundle {path} was not written", details=problems,
                                hint="run the same save again: blobs already saved into a directory are kept")
        entries = [e for i, ref in enumerate(images)
                   for e in _entries(ref, graphs[i], str(ref) in (build_inputs or set()))]
        annotations = {SINCE: "differential: blobs of an earlier bundle left out"} if since else None
        writer.finish(layout_index(entries, annotations))
    except BaseException:
        writer.abort()
        raise
    out = [SaveResult(str(ref), "saved", graphs[i].digest, _summary(graphs[i])) for i, ref in enumerate(images)]
    for result in out:
        if on_done:
            on_done(result)
    return out


def _fetch(clients: Clients, ref: ImageRef) -> ImageGraph | str:
    try:
        graph = fetch_graph(clients.get(ref.domain), ref.path, ref.reference)
    except RegistryError as exc:
        return exc.message
    if graph is None:
        return f"not found at the source {ref}"
    if ref.digest and ref.digest != graph.digest:
        return f"the source served {graph.digest}, not the pinned {ref.digest}"
    return graph


def _summary(graph: ImageGraph) -> str:
    kinds = sorted({a.kind for a in graph.accessories})
    platforms = len(graph.root.children)
    parts = [f"{platforms} platforms" if platforms else "", f"with {', '.join(kinds)}" if kinds else ""]
    return "; ".join(p for p in parts if p)


def _write_objects(writer: LayoutWriter, images: Sequence[ImageRef], graphs: dict[int, ImageGraph],
                   clients: Clients, since: set[str], workers: int, stats: TransferStats) -> list[str]:
    """Every manifest (always), and each blob once unless `since` covers it, downloaded `workers` at once,
    biggest first."""
    sources: dict[str, tuple[Descriptor, list[tuple[RegistryClient, str]]]] = {}
    for i, graph in graphs.items():
        client = clients.get(images[i].domain)
        for manifest in graph.all_manifests().values():
            writer.add_bytes(manifest.digest, manifest.body)
        for digest, descriptor in graph.all_blobs().items():
            entry = sources.setdefault(digest, (descriptor, []))
            entry[1].append((client, images[i].path))
    wanted = [d for d in sources.values() if d[0].digest not in since and not writer.has(d[0].digest, d[0].size)]
    stats.add(blobs_present=len(sources) - len(wanted))
    wanted.sort(key=lambda item: item[0].size, reverse=True)
    problems: list[str] = []
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = [pool.submit(_download, writer, descriptor, origins, stats) for descriptor, origins in wanted]
        for future in as_completed(futures):
            problem = future.result()
            if problem:
                problems.append(problem)
    return problems


def _download(writer: LayoutWriter, descriptor: Descriptor, origins: list[tuple[RegistryClient, str]],
              stats: TransferStats) -> str | None:
    last = ""
    for client, path in origins[:3]:
        what = f"blob {descriptor.digest} from {client.host}/{path}"
        try:
            resp = client.get_blob(path, descriptor.digest)
            try:
                with writer.blob(descriptor.digest) as out:
                    copy_verified(VerifyingReader(resp.raw, descriptor.digest, descriptor.size, what), out)
            finally:
                resp.close()
        except (RegistryError, OSError) as exc:
            last = getattr(exc, "message", None) or str(exc)
            continue
        stats.add(bytes_downloaded=descriptor.size, blobs_downloaded=1)
        return None
    return last


def _entries(ref: ImageRef, graph: ImageGraph, build_input: bool) -> Iterator[dict[str, Any]]:
    name = str(ref)
    root = graph.root.descriptor().as_json()
    root["annotations"] = {REF_NAME: name, CONTAINERD_NAME: name, **({ROLE: BUILD_INPUT} if build_input else {})}
    yield root
    for accessory in graph.accessories:
        entry = accessory.graph.root.descriptor().as_json()
        entry["annotations"] = {REF_NAME: f"{ref.name}:{accessory.tag}", ACCESSORY_KIND: accessory.kind,
                                ACCESSORY_SUBJECT: accessory.subject}
        yield entry


# --- load ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BundleSource:
    """Blobs from a bundle, for the sender: each read checked against its digest and size."""

    reader: LayoutReader

    @property
    def where(self) -> str:
        return str(self.reader.path)

    @property
    def host(self) -> None:
        return None

    @property
    def path(self) -> None:
        return None

    def open(self, descriptor: Descriptor) -> Any:
        return _open_blob(self.reader, descriptor)


def _open_blob(reader: LayoutReader, descriptor: Descriptor) -> Any:
    import contextlib

    @contextlib.contextmanager
    def opened() -> Iterator[Any]:
        with reader.open_member(blob_name(descriptor.digest)) as handle:
            if handle is None:
                raise BlobMissing(f"blob {descriptor.digest} is not in {reader.path} (a differential bundle) nor "
                                  "at the destination: load the earlier bundle first, then this one")
            yield handle

    return opened()


@dataclass(frozen=True)
class BundleImage:
    source: ImageRef
    entry: dict[str, Any]
    accessories: tuple[dict[str, Any], ...]

    @property
    def build_input(self) -> bool:
        return (self.entry.get("annotations") or {}).get(ROLE) == BUILD_INPUT


def bundle_images(reader: LayoutReader) -> list[BundleImage]:
    """The images of a bundle (with the accessory entries of each), in index order."""
    images: list[BundleImage] = []
    extras: list[dict[str, Any]] = []
    for entry in reader.index()["manifests"]:
        annotations = entry.get("annotations") or {}
        if annotations.get(ACCESSORY_KIND):
            extras.append(entry)
            continue
        name = annotations.get(REF_NAME) or annotations.get(CONTAINERD_NAME)
        if not name:
            raise BundleError(f"{reader.path}: image {entry.get('digest')} has no reference in its annotations "
                              f"({REF_NAME}): which image is it?")
        images.append(BundleImage(parse_ref(str(name), str(reader.path)), entry, ()))
    out = []
    for image in images:
        mine = tuple(e for e in extras if str(e["annotations"][REF_NAME]).rsplit(":", 1)[0] == image.source.name
                     and e["annotations"].get(ACCESSORY_SUBJECT) in _digests(reader, image))
        out.append(BundleImage(image.source, image.entry, mine))
    return out


def _digests(reader: LayoutReader, image: BundleImage) -> set[str]:
    graph = graph_from_layout(reader, image.entry["digest"], str(image.source))
    return set(graph.manifests)


def load_bundle(path: Path, place: Callable[[list[SourceImage]], list[ImageRef | None]], clients: Clients, *,
                force: bool = False, workers: int = 8, stats: TransferStats | None = None,
                on_done: Callable[[CopyResult], None] | None = None) -> list[CopyResult]:
    """Push every image of the bundle at `path` to where `place` puts it (None: pulled from its source,
    nothing to load), with the rules of mirror."""
    with LayoutReader(path) as reader:
        images = bundle_images(reader)
        targets = place([SourceImage(i.source, str(path), i.build_input) for i in images])
        for host in dict.fromkeys(t.domain for t in targets if t is not None):
            clients.get(host).ping()
        source = BundleSource(reader)

        def decide(i: int) -> CopyResult | Copy:
            image, target = images[i], targets[i]
            if target is None:
                return CopyResult(str(image.source), str(image.source), "skipped", image.entry.get("digest"),
                                  "pulled from its source (no rule sends it to a registry)")
            try:
                graph = graph_from_layout(reader, image.entry["digest"], str(image.source))
                accessories = [Accessory(str(e["annotations"][ACCESSORY_KIND]),
                                         str(e["annotations"][REF_NAME]).rsplit(":", 1)[1],
                                         str(e["annotations"][ACCESSORY_SUBJECT]),
                                         graph_from_layout(reader, e["digest"], str(image.source)))
                               for e in image.accessories]
                return judge(str(image.source), target, clients.get(target.domain), graph.root, accessories,
                             lambda _root: graph, source, force)
            except RegistryError as exc:
                return CopyResult(str(image.source), str(target), "failed", None, exc.message)

        return run_copies(len(images), decide, clients, workers=workers, on_done=on_done, stats=stats,
                          decide_first=True)


