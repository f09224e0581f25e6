package org.ssiplugin.launcher;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.opensearch.Version;
import org.opensearch.analysis.common.CommonAnalysisPlugin;
import org.opensearch.cluster.service.ClusterService;
import org.opensearch.common.settings.Settings;
import org.opensearch.env.Environment;
import org.opensearch.gateway.GatewayService;
import org.opensearch.http.BindHttpException;
import org.opensearch.index.mapper.MapperExtrasPlugin;
import org.opensearch.index.reindex.ReindexPlugin;
import org.opensearch.ingest.common.IngestCommonPlugin;
import org.opensearch.node.InternalSettingsPreparer;
import org.opensearch.node.Node;
import org.opensearch.painless.PainlessPlugin;
import org.opensearch.plugins.Plugin;
import org.opensearch.script.mustache.MustachePlugin;
import org.opensearch.transport.Netty4Plugin;

import sun.misc.Signal;

/**
 * Runs one single-node OpenSearch cluster in this JVM, with the modules ssi-plugin
 * needs loaded as classpath plugins (no distribution, no plugin folders).
 *
 * <p>Protocol shared by every ssi-plugin launcher:
 * {@code --home DIR --data DIR --logs DIR --port N --ready-file FILE}. HTTP binds on
 * 127.0.0.1:N; once the node serves requests the ready file is written atomically as
 * {@code {"url", "pid", "engine", "version"}}. SIGTERM or SIGINT closes the node and
 * exits 0, and so does the exit of the process given by the optional {@code --parent-pid PID}.
 * A start-up failure prints one line starting with {@code ssi-launcher:} to
 * stderr and exits 1 (details go to stdout, which the caller logs).
 */
public final class OpenSearchLauncher {

    private static final List<Class<? extends Plugin>> MODULES = List.of(
        Netty4Plugin.class,
        IngestCommonPlugin.class,
        PainlessPlugin.class,
        ReindexPlugin.class,
        MustachePlugin.class,
        CommonAnalysisPlugin.class,
        MapperExtrasPlugin.class
    );

    private OpenSearchLauncher() {}

    /** A Node whose constructor is reachable with classpath plugins. */
    private static final class EmbeddedNode extends Node {
        EmbeddedNode(Environment environment, Collection<Class<? extends Plugin>> plugins) {
            super(environment, plugins, true);
        }

        @Override
        protected void configureNodeAndClusterIdStateListener(ClusterService clusterService) {
            // the stock listener may be registered once per JVM; one node per JVM needs none
        }
    }

    public static void main(String[] args) {
        Map<String, String> options;
        try {
            options = parse(args);
        } catch (IllegalArgumentException e) {
            fail(e.getMessage(), null);
            return;
        }
        Path home = Paths.get(options.get("home")).toAbsolutePath();
        Path readyFile = Paths.get(options.get("ready-file")).toAbsolutePath();
        String port = options.get("port");

        Settings settings = Settings.builder()
            .put("path.home", home.toString())
            .put("path.data", Paths.get(options.get("data")).toAbsolutePath().toString())
            .put("path.logs", Paths.get(options.get("logs")).toAbsolutePath().toString())
            .put("cluster.name", "ssi-plugin-local")
            .put("node.name", "ssi-plugin-local")
            .put("discovery.type", "single-node")
            .put("network.host", "127.0.0.1")
            .put("http.port", port)
            .put("cluster.routing.allocation.disk.threshold_enabled", false)
            .put("indices.breaker.total.use_real_memory", false)
            .build();

        String parent = options.get("parent-pid");
        if (parent != null) {
            exitWith(Long.parseLong(parent));
        }

        Node node;
        try {
            Environment environment = InternalSettingsPreparer.prepareEnvironment(
                settings, new HashMap<>(), home.resolve("config"), () -> "ssi-plugin-local");
            node = new EmbeddedNode(environment, MODULES);
            installShutdown(node);
            node.start();
            awaitRecovered(node.injector().getInstance(ClusterService.class));
            writeReadyFile(readyFile, "http://127.0.0.1:" + port);
        } catch (Throwable e) {
            fail(describe(e, port, options.get("data")), e);
            return;
        }
        System.out.println("ssi-launcher: ready at http://127.0.0.1:" + port);
        try {
            new CountDownLatch(1).await(); // node threads may all be daemons: park until a signal exits
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** Requests answer 503 until the cluster state is recovered, so readiness waits for that. */
    private static void awaitRecovered(ClusterService clusterService) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(2);
        while (clusterService.state().blocks().hasGlobalBlock(GatewayService.STATE_NOT_RECOVERED_BLOCK)) {
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException("the cluster state was not recovered within 2 minutes");
            }
            Thread.sleep(50);
        }
    }

    /** SIGTERM/SIGINT exit 0 through the shutdown hook, which closes the node. */
    private static void installShutdown(Node node) {
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                node.close();
                node.awaitClose(20, TimeUnit.SECONDS);
            } catch (IOException | InterruptedException e) {
                e.printStackTrace(System.out);
            }
        }, "ssi-launcher-shutdown"));
        Signal.handle(new Signal("TERM"), signal -> System.exit(0));
        Signal.handle(new Signal("INT"), signal -> System.exit(0));
    }

    /** An attached node (e.g. a test session's) must not outlive its owner, even one killed with SIGKILL. */
    private static void exitWith(long pid) {
        ProcessHandle.of(pid).ifPresentOrElse(
            owner -> owner.onExit().thenRun(() -> System.exit(0)),
            () -> System.exit(0));
    }

    private static void writeReadyFile(Path readyFile, String url) throws IOException {
        String json = String.format(
            "{\"url\": \"%s\", \"pid\": %d, \"engine\": \"opensearch\", \"version\": \"%s\"}%n",
            url, ProcessHandle.current().pid(), Version.CURRENT);
        Path tmp = readyFile.resolveSibling(readyFile.getFileName() + ".tmp");
        Files.writeString(tmp, json, StandardCharsets.UTF_8);
        Files.move(tmp, readyFile, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    }

    /** One line a user can act on; the full trace goes to the log. */
    private static String describe(Throwable e, String port, String data) {
        for (Throwable cause = e; cause != null; cause = cause.getCause()) {
            if (cause instanceof BindHttpException) {
                return "HTTP port " + port + " on 127.0.0.1 is already in use";
            }
            String message = String.valueOf(cause.getMessage());
            if (message.contains("failed to obtain node locks")) {
                return "the data directory " + data + " is locked by another running node";
            }
        }
        Throwable root = e;
        while (root.getCause() != null && root.getCause() != root) {
            root = root.getCause();
        }
        return root.getClass().getSimpleName() + ": " + root.getMessage();
    }

    private static void fail(String message, Throwable e) {
        if (e != null) {
            e.printStackTrace(System.out);
        }
        PrintStream err = System.err;
        err.println("ssi-launcher: " + message.replace('\n', ' '));
        err.flush();
        Runtime.getRuntime().halt(1);
    }

    private static Map<String, String> parse(String[] args) {
        Map<String, String> options = new HashMap<>();
        for (int i = 0; i < args.length; i += 2) {
            if (!args[i].startsWith("--") || i + 1 >= args.length) {
                throw new IllegalArgumentException("bad argument " + args[i] + "; usage: " + USAGE);
            }
            options.put(args[i].substring(2), args[i + 1]);
        }
        for (String required : List.of("home", "data", "logs", "port", "ready-file")) {
            if (!options.containsKey(required)) {
                throw new IllegalArgumentException("missing --" + required + "; usage: " + USAGE);
            }
        }
        return options;
    }

    private static final String USAGE = "--home DIR --data DIR --logs DIR --port N --ready-file FILE [--parent-pid PID]";
}
