"""`rlx pull`: from a registry into the store.

Order: resolve the name (registries.conf), fetch the manifest (an index picks the platform),
then the config and the layers, several at once, each streamed into the store and verified
before its rename (Store.put_blob), then unpack the new layers and name the image. The
download threads end before the unpack forks its user-namespace helper (unshare needs a
single-threaded process, and a fork of a threaded one is fragile). The whole pull holds the
store's lock shared: a concurrent prune waits.
"""

import concurrent.futures
import sys
import threading
import time

from rootless.images import auth, image, regconf
from rootless.images.digest import ImageError, digest_of
from rootless.images.store import Store

PARALLEL = 3


def pull(store: Store, text: str, *, platform: str | None = None, tls_verify: bool = True,
         progress: bool = True, debug=lambda message: None, conf: dict | None = None):
    from rootless.images.registry import Registry
    conf = regconf.load_conf() if conf is None else conf
    candidates = regconf.resolve(text, conf)
    failures = []
    for ref in candidates:
        host, insecure = regconf.endpoint(ref, conf)
        debug(f"trying {ref} at {'http' if insecure else 'https'}://{host}")
        registry = Registry(host, insecure=insecure, tls_verify=tls_verify,
                            credentials=auth.credentials(ref.registry, ref.repository))
        try:
            with store.lock("store", exclusive=False):
                try:
                    manifest_digest = _fetch(store, registry, ref, platform, progress and sys.stderr.isatty(), debug)
                except ImageError as err:
                    if len(candidates) == 1:
                        raise
                    failures.append(str(err))
                    continue
                finally:
                    registry.close()
                return image.commit(store, str(ref), manifest_digest)
        finally:
            registry.close()
    raise ImageError(f"{text}: not found in any search registry: " + "; ".join(failures))


def _fetch(store: Store, registry, ref: regconf.Reference, platform: str | None, bar: bool, debug) -> str:
    data, content_type = registry.manifest(ref.repository, ref.reference, image.ACCEPT)
    if ref.digest and digest_of(data) != ref.digest:
        raise ImageError(f"{ref}: the registry sent a manifest whose digest is {digest_of(data)}: refused")
    kind = image.media_type(data, content_type)
    if kind in image.INDEXES:
        chosen = image.pick_platform(data, platform)
        debug(f"index: chose {chosen['digest']} for {platform or image.host_platform()}")
        data, content_type = registry.manifest(ref.repository, chosen["digest"], image.ACCEPT)
        if digest_of(data) != chosen["digest"]:
            raise ImageError(f"{ref}: the manifest for {chosen['digest']} does not match its digest: refused")
        image.media_type(data, content_type)
    manifest_digest = store.put_bytes(data, digest_of(data))
    config, layers = image.layers_of(data)
    store.put_blob(config["digest"], lambda out: registry.fetch_blob(ref.repository, config["digest"], out))
    # Layers already unpacked (by diff ID, from the config) are not fetched again.
    diff_ids = image.diff_ids(store, config["digest"], len(layers))
    wanted = [layer for layer, diff_id in zip(layers, diff_ids)
              if not store.has_layer(diff_id) and not store.has_blob(layer["digest"])]
    debug(f"{ref}: {len(layers)} layers, {len(layers) - len(wanted)} already in the store")
    meter = _Meter(sum(d.get("size", 0) for d in wanted), len(wanted)) if bar else None

    def fetch(descriptor: dict) -> None:
        def fill(out):
            registry.fetch_blob(ref.repository, descriptor["digest"], out, meter.add if meter else None)
        store.put_blob(descriptor["digest"], fill)
        if meter:
            meter.done()

    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=PARALLEL) as pool:
            for future in [pool.submit(fetch, d) for d in wanted]:
                future.result()
    finally:
        if meter:
            meter.finish()
    return manifest_digest


class _Meter:
    """A one-line progress bar on stderr (a terminal only), redrawn at most 10 times a second."""

    def __init__(self, total: int, blobs: int):
        self.total, self.blobs, self.bytes, self.finished = total, blobs, 0, 0
        self.lock = threading.Lock()
        self.last = 0.0

    def add(self, n: int) -> None:
        with self.lock:
            self.bytes += n
            self._draw()

    def done(self) -> None:
        with self.lock:
            self.finished += 1
            self._draw(force=True)

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < 0.1:
            return
        self.last = now
        width = 30
        filled = int(width * self.bytes / self.total) if self.total else width
        sys.stderr.write(f"\r[{'#' * min(filled, width):<{width}}] {self.bytes / 1e6:7.1f}/{self.total / 1e6:.1f} MB "
                         f"{self.finished}/{self.blobs} blobs")
        sys.stderr.flush()

    def finish(self) -> None:
        sys.stderr.write("\n")
