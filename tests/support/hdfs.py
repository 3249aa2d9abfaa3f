"""A throwaway single-node HDFS for tests: NameNode and one DataNode in one JVM, on loopback.

    with MiniHdfs.started() as hdfs:
        hdfs.uri             # hdfs://127.0.0.1:N   (Spark, Delta)
        hdfs.webhdfs_url     # http://127.0.0.1:M   (the `hdfs` package, the collector)
        hdfs.client("edge")  # an `hdfs.InsecureClient` acting as user `edge`

It runs Hadoop's own CLI `org.apache.hadoop.test.MiniDFSClusterManager` from the
shaded `hadoop-client-minicluster` 3.5.0 jar (the same Hadoop as the client in the
pyspark wheel), fetched once by

    python deps/fetch_jars.py deps/hadoop-minicluster.pom.xml .cache/jars/hadoop --keep-all

The JVM picks its own free ports (port 0) and reports them in the config file it
writes once the cluster is up, so two sessions never race for a port. Ready means:
that file exists, the NameNode is out of safe mode and one DataNode is live (read
from its JMX servlet), and WebHDFS answers.

Permission checks are off (`dfs.permissions.enabled=false`): the JVM's user (root
on the test machines) is the superuser, and any WebHDFS user name may write
anywhere, so the collector's user and Spark's need no chown. Java 17 needs no
`--add-opens` flag for what the tests do (format, NameNode, DataNode, WebHDFS,
Spark and Delta over hdfs://; checked). See docs/services.md.
"""

from __future__ import annotations

import atexit
import contextlib
import getpass
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from tests.support import daemon
from tests.support.daemon import ServiceStartError

if TYPE_CHECKING:
    from hdfs import InsecureClient

REPO = Path(__file__).resolve().parents[2]
JARS_ENV = "EDGEBATCH_HADOOP_JARS"
DEFAULT_JARS = REPO / ".cache" / "jars" / "hadoop"
FETCH_HINT = (
    ".venv/bin/python deps/fetch_jars.py deps/hadoop-minicluster.pom.xml "
    ".cache/jars/hadoop --keep-all"
)
MAIN_CLASS = "org.apache.hadoop.test.MiniDFSClusterManager"

# Start-up flags, measured on 2 busy cores: C1 only and the serial GC take start-up
# from about 17 s to about 12 s; the cluster is small and short-lived.
JVM_FLAGS = (
    "-XX:TieredStopAtLevel=1",
    "-XX:+UseSerialGC",
    "-Djava.net.preferIPv4Stack=true",
    "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
    "-Dorg.slf4j.simpleLogger.showDateTime=true",
    f"-Dorg.slf4j.simpleLogger.log.{MAIN_CLASS}=info",
)

# Tighter than Hadoop's defaults so a test sees a dead DataNode or a reopened file quickly.
HADOOP_CONF = {
    # One DataNode: a file asks for one replica (WebHDFS writes take the server's default;
    # hdfs:// clients such as Spark bring their own, see docs/services.md).
    "dfs.replication": "1",
    # Any user may write anywhere: the tests' WebHDFS users are made up.
    "dfs.permissions.enabled": "false",
    "dfs.namenode.safemode.extension": "0",
    "dfs.heartbeat.interval": "1",
    # HDFS's own answer to fsync: a DataNode syncs a block file to disk when it is closed.
    "dfs.datanode.synconclose": "true",
}


class MiniHdfs:
    """One running minicluster. Use `MiniHdfs.started()`, or `start()` and `stop()`."""

    def __init__(
        self,
        *,
        jars_dir: Path | None = None,
        heap: str = "512m",
        start_timeout: float = 90.0,
        java: str = "java",
    ) -> None:
        self.jars_dir = Path(jars_dir or os.environ.get(JARS_ENV) or DEFAULT_JARS)
        self.heap = heap
        self.start_timeout = start_timeout
        self.java = java
        self.root: Path | None = None
        self.namenode_port = 0
        self.http_port = 0
        self.startup_seconds = 0.0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        """`hdfs://127.0.0.1:N`: the NameNode's RPC address, for Spark and Delta."""
        return f"hdfs://127.0.0.1:{self.namenode_port}"

    namenode_uri = uri

    @property
    def webhdfs_url(self) -> str:
        """`http://127.0.0.1:M`: the NameNode's HTTP server, which serves WebHDFS."""
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def user(self) -> str:
        """The cluster's superuser: whoever runs the JVM."""
        return getpass.getuser()

    def client(self, user: str | None = None) -> InsecureClient:
        """An `hdfs.InsecureClient` (WebHDFS) acting as `user` (default: the superuser)."""
        from hdfs import InsecureClient

        return InsecureClient(self.webhdfs_url, user=user or self.user)

    @property
    def log(self) -> Path:
        assert self.root is not None, "not started"
        return self.root / "minicluster.log"

    def start(self) -> MiniHdfs:
        """Start the JVM and return once HDFS takes reads and writes; raise with the log tail."""
        if self._process is not None:
            raise RuntimeError("this MiniHdfs is already started")
        classpath = self._classpath()
        began = time.monotonic()
        self.root = Path(tempfile.mkdtemp(prefix="edgebatch-hdfs-"))
        (self.root / "tmp").mkdir()
        config, details = self.root / "conf.xml", self.root / "details.json"
        cmd = [
            self.java,
            f"-Xmx{self.heap}",
            *JVM_FLAGS,
            # Jetty unpacks the web apps under java.io.tmpdir: keep them in our folder.
            f"-Djava.io.tmpdir={self.root / 'tmp'}",
            "-cp",
            classpath,
            MAIN_CLASS,
            "-format",
            "-datanodes",
            "1",
            "-nnport",
            "0",
            "-httpport",
            "0",
            "-writeConfig",
            str(config),
            "-writeDetails",
            str(details),
            "-D",
            f"hdfs.minidfs.basedir={self.root / 'data'}",
            # Otherwise /tmp/hadoop-${user.name}, shared with every other minicluster here.
            "-D",
            f"hadoop.tmp.dir={self.root / 'tmp'}",
        ]
        for key, value in HADOOP_CONF.items():
            cmd += ["-D", f"{key}={value}"]
        atexit.register(self.stop)
        try:
            try:
                self._process = daemon.spawn(cmd, self.log, cwd=self.root)
            except OSError as exc:
                raise ServiceStartError(
                    f"HDFS minicluster: cannot run {self.java!r} ({exc}); install a JDK 17"
                ) from exc
            # The manager writes the config, then the details, after the cluster is active.
            daemon.wait_ready(
                lambda: json.loads(details.read_text()) or None,
                what="HDFS minicluster (waiting for its details file)",
                process=self._process,
                log=self.log,
                timeout=self.start_timeout,
            )
            self.namenode_port, self.http_port = _ports_from(config)
            remaining = max(5.0, self.start_timeout - (time.monotonic() - began))
            daemon.wait_ready(
                self._ready,
                what=f"HDFS minicluster at {self.webhdfs_url} (safe mode, live DataNode)",
                process=self._process,
                log=self.log,
                timeout=remaining,
            )
        except BaseException:
            # Keep the folder (its log is named in the error) for a look afterwards.
            self.stop(keep_files=True)
            raise
        self.startup_seconds = time.monotonic() - began
        return self

    def stop(self, *, keep_files: bool = False) -> None:
        """Kill the JVM and delete every file the cluster had; safe to call twice."""
        daemon.stop(self._process)
        self._process = None
        if self.root is not None and not keep_files:
            shutil.rmtree(self.root, ignore_errors=True)
        atexit.unregister(self.stop)

    def log_tail(self, lines: int = 40) -> str:
        return daemon.log_tail(self.log, lines)

    @classmethod
    @contextlib.contextmanager
    def started(cls, **kwargs: object) -> Iterator[MiniHdfs]:
        cluster = cls(**kwargs).start()  # type: ignore[arg-type]
        try:
            yield cluster
        finally:
            cluster.stop()

    def _classpath(self) -> str:
        jars = sorted(self.jars_dir.glob("*.jar"))
        if not any(j.name.startswith("hadoop-client-minicluster-") for j in jars):
            raise ServiceStartError(
                f"no hadoop-client-minicluster jar in {self.jars_dir}: run `{FETCH_HINT}` "
                f"from {REPO} (or set {JARS_ENV})"
            )
        return os.pathsep.join(str(j) for j in jars)

    def _ready(self) -> bool | None:
        state = _jmx_bean(self.webhdfs_url, "Hadoop:service=NameNode,name=FSNamesystemState")
        if state.get("FSState") != "Operational" or state.get("NumLiveDataNodes", 0) < 1:
            return None
        url = f"{self.webhdfs_url}/webhdfs/v1/?op=GETFILESTATUS&user.name={self.user}"
        with urllib.request.urlopen(url, timeout=5) as reply:
            return True if reply.status == 200 else None


def _jmx_bean(base_url: str, name: str) -> dict:
    with urllib.request.urlopen(f"{base_url}/jmx?qry={name}", timeout=5) as reply:
        beans = json.load(reply).get("beans", [])
    return beans[0] if beans else {}


def _ports_from(config: Path) -> tuple[int, int]:
    """The NameNode's RPC and HTTP ports, from the Hadoop config file the manager wrote."""
    props = {
        p.findtext("name"): p.findtext("value") or ""
        for p in ET.parse(config).getroot().iter("property")
    }
    try:
        rpc = int(props["dfs.namenode.rpc-address"].rsplit(":", 1)[1])
        http = int(props["dfs.namenode.http-address"].rsplit(":", 1)[1])
    except (KeyError, IndexError, ValueError):
        raise ServiceStartError(
            f"HDFS minicluster: no NameNode addresses in {config}; "
            "the manager's config format may have changed"
        ) from None
    return rpc, http
