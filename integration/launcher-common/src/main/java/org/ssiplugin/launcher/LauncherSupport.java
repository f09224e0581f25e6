package org.ssiplugin.launcher;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

import sun.misc.Signal;

/**
 * The protocol every ssi-plugin launcher speaks, kept in one place so that a launcher
 * only builds and starts its engine's node. This source folder is compiled into each
 * launcher's own Maven build; it uses no engine classes.
 *
 * <p>{@code --home DIR --data DIR --logs DIR --port N --ready-file FILE [--parent-pid PID]}.
 * HTTP binds on 127.0.0.1:N; once the node serves requests the ready file is written
 * atomically as {@code {"url", "pid", "engine", "version"}}. SIGTERM or SIGINT closes the
 * node and exits 0, and so does the exit of the process given by {@code --parent-pid}.
 * A start-up failure prints one line starting with {@code ssi-launcher:} to stderr and
 * exits 1 (details go to stdout, which the caller logs).
 *
 * <p>Without {@code --seed-hosts} the node is a single-node cluster. With it the node is
 * one member of a local cluster: {@code --node-name NAME --transport-port N --seed-hosts
 * 127.0.0.1:P,... [--initial-cluster-managers NAME,...]} (transport binds on 127.0.0.1:N,
 * discovery asks the seed hosts; the initial cluster managers, named by every member,
 * bootstrap a new cluster and are ignored once it has formed). A member is ready once it
 * has joined an elected cluster manager, so the members of a new cluster start together.
 */
final class LauncherSupport {

    static final String NODE_NAME = "ssi-plugin-local";

    private static final String USAGE = "--home DIR --data DIR --logs DIR --port N --ready-file FILE [--parent-pid PID] "
        + "[--node-name NAME --transport-port N --seed-hosts HOST:PORT,... [--initial-cluster-managers NAME,...]]";
    private static final List<String> REQUIRED = List.of("home", "data", "logs", "port", "ready-file");
    /** What a cluster member needs beside {@link #REQUIRED}. */
    private static final List<String> REQUIRED_IN_A_CLUSTER = List.of("node-name", "transport-port");

    private LauncherSupport() {}

    /**
     * The command line, with paths made absolute; {@code parentPid} is null for a detached node,
     * {@code seedHosts} null for a single-node cluster (and then the other cluster fields too).
     */
    record Options(Path home, Path data, Path logs, String port, Path readyFile, Long parentPid,
                   String nodeName, String transportPort, String seedHosts, String initialClusterManagers) {

        String url() {
            return "http://127.0.0.1:" + port;
        }

        /** True for a member of a local cluster, false for a single-node cluster. */
        boolean clustered() {
            return seedHosts != null;
        }

        /**
         * The settings of every local node, whatever its engine; the default node roles (with ingest) are kept.
         * A cluster member's initial cluster managers are left to the engine, which names that setting.
         */
        Map<String, String> nodeSettings() {
            Map<String, String> settings = new LinkedHashMap<>();
            settings.put("path.home", home.toString());
            settings.put("path.data", data.toString());
            settings.put("path.logs", logs.toString());
            settings.put("cluster.name", NODE_NAME);
            settings.put("node.name", nodeName);
            if (clustered()) {
                settings.put("discovery.seed_hosts", seedHosts);
                settings.put("transport.port", transportPort);
            } else {
                settings.put("discovery.type", "single-node");
            }
            settings.put("network.host", "127.0.0.1");
            settings.put("http.port", port);
            settings.put("cluster.routing.allocation.disk.threshold_enabled", "false");
            settings.put("indices.breaker.total.use_real_memory", "false");
            return settings;
        }
    }

    /** Starts the engine's node and returns its version once the node serves requests. */
    @FunctionalInterface
    interface Starter {
        String start(Options options) throws Exception;
    }

    /** Closes the node when the JVM exits. */
    @FunctionalInterface
    interface Closer {
        void close() throws Exception;
    }

    /**
     * Runs one launcher: reads the command line, starts the node, writes the ready file and
     * parks until a signal or the owner's exit ends the JVM. {@code bindFailure} is the
     * engine's exception for an HTTP port that is taken.
     */
    static void run(String engine, String[] args, Class<? extends Throwable> bindFailure, Starter starter) {
        Options options;
        try {
            options = parse(args);
        } catch (IllegalArgumentException e) {
            fail(e.getMessage(), null);
            return;
        }
        if (options.parentPid() != null) {
            exitWith(options.parentPid());
        }
        try {
            String version = starter.start(options);
            writeReadyFile(options, engine, version);
        } catch (Throwable e) {
            fail(describe(e, options, bindFailure), e);
            return;
        }
        System.out.println("ssi-launcher: ready at " + options.url());
        try {
            new CountDownLatch(1).await(); // node threads may all be daemons: park until a signal exits
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** SIGTERM/SIGINT exit 0 through a shutdown hook that runs {@code closer}. */
    static void closeOnExit(Closer closer) {
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                closer.close();
            } catch (Exception e) {
                e.printStackTrace(System.out);
            }
        }, "ssi-launcher-shutdown"));
        Signal.handle(new Signal("TERM"), signal -> System.exit(0));
        Signal.handle(new Signal("INT"), signal -> System.exit(0));
    }

    /** Requests answer 503 until the cluster state is recovered, so readiness waits for that. */
    static void awaitRecovered(BooleanSupplier recovered) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(2);
        while (!recovered.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException("the cluster state was not recovered within 2 minutes");
            }
            Thread.sleep(50);
        }
    }

    private static Options parse(String[] args) {
        Map<String, String> options = new HashMap<>();
        for (int i = 0; i < args.length; i += 2) {
            if (!args[i].startsWith("--") || i + 1 >= args.length) {
                throw new IllegalArgumentException("bad argument " + args[i] + "; usage: " + USAGE);
            }
            options.put(args[i].substring(2), args[i + 1]);
        }
        for (String required : REQUIRED) {
            if (!options.containsKey(required)) {
                throw new IllegalArgumentException("missing --" + required + "; usage: " + USAGE);
            }
        }
        String parent = options.get("parent-pid");
        if (parent != null && !parent.matches("[0-9]{1,18}")) {
            throw new IllegalArgumentException("--parent-pid " + parent + " is not a process id; usage: " + USAGE);
        }
        String seedHosts = options.get("seed-hosts");
        if (seedHosts != null) {
            for (String required : REQUIRED_IN_A_CLUSTER) {
                if (!options.containsKey(required)) {
                    throw new IllegalArgumentException("--seed-hosts needs --" + required + "; usage: " + USAGE);
                }
            }
        } else if (options.containsKey("transport-port") || options.containsKey("initial-cluster-managers")) {
            throw new IllegalArgumentException("cluster options need --seed-hosts; usage: " + USAGE);
        }
        return new Options(
            absolute(options.get("home")),
            absolute(options.get("data")),
            absolute(options.get("logs")),
            options.get("port"),
            absolute(options.get("ready-file")),
            parent == null ? null : Long.valueOf(parent),
            options.getOrDefault("node-name", NODE_NAME),
            options.get("transport-port"),
            seedHosts,
            options.get("initial-cluster-managers"));
    }

    private static Path absolute(String path) {
        return Paths.get(path).toAbsolutePath();
    }

    /** An attached node (e.g. a test session's) must not outlive its owner, even one killed with SIGKILL. */
    private static void exitWith(long pid) {
        ProcessHandle.of(pid).ifPresentOrElse(
            owner -> owner.onExit().thenRun(() -> System.exit(0)),
            () -> System.exit(0));
    }

    private static void writeReadyFile(Options options, String engine, String version) throws IOException {
        String json = String.format(
            "{\"url\": \"%s\", \"pid\": %d, \"engine\": \"%s\", \"version\": \"%s\"}%n",
            options.url(), ProcessHandle.current().pid(), engine, version);
        Path readyFile = options.readyFile();
        Path tmp = readyFile.resolveSibling(readyFile.getFileName() + ".tmp");
        Files.writeString(tmp, json, StandardCharsets.UTF_8);
        Files.move(tmp, readyFile, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    }

    /** One line a user can act on; the full trace goes to the log. */
    private static String describe(Throwable e, Options options, Class<? extends Throwable> bindFailure) {
        for (Throwable cause = e; cause != null; cause = cause.getCause()) {
            if (bindFailure.isInstance(cause)) {
                return "HTTP port " + options.port() + " on 127.0.0.1 is already in use";
            }
            if (String.valueOf(cause.getMessage()).contains("failed to obtain node locks")) {
                return "the data directory " + options.data() + " is locked by another running node";
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
}
