package org.ssiplugin.launcher;

import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.io.Writer;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.jar.JarEntry;
import java.util.jar.JarFile;
import java.util.stream.Stream;

import org.elasticsearch.Build;
import org.elasticsearch.cluster.service.ClusterService;
import org.elasticsearch.common.logging.LogConfigurator;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.env.Environment;
import org.elasticsearch.gateway.GatewayService;
import org.elasticsearch.http.BindHttpException;
import org.elasticsearch.node.InternalSettingsPreparer;
import org.elasticsearch.node.Node;
import org.elasticsearch.plugins.PluginsLoader;

import sun.misc.Signal;

/**
 * Runs one single-node Elasticsearch core cluster in this JVM: the server jar from
 * Maven Central plus its transport-netty4 module (HTTP), nothing else.
 *
 * <p>The server loads modules only from {@code path.home/modules}, each a folder with
 * its jars and a {@code plugin-descriptor.properties}. The launcher lays that folder
 * out on every start from the jars the build copied beside it, and writes the
 * descriptor the module jar carries, without its {@code modulename}: the server runs
 * on the classpath (the unnamed module), so the module is loaded by a plain class
 * loader rather than as a Java module layer. The distribution's bootstrap
 * (entitlements, bootstrap checks, native controllers) is not involved, and the
 * distribution's native libraries (libvec, libzstd) are not published, so native
 * access stays off: Lucene's Java code paths are used, and the zstd-based
 * {@code index.codec: best_compression} cannot be used.
 *
 * <p>Protocol shared by every ssi-plugin launcher:
 * {@code --home DIR --data DIR --logs DIR --port N --ready-file FILE}. HTTP binds on
 * 127.0.0.1:N; once the node serves requests the ready file is written atomically as
 * {@code {"url", "pid", "engine", "version"}}. SIGTERM or SIGINT closes the node and
 * exits 0, and so does the exit of the process given by the optional {@code --parent-pid PID}.
 * A start-up failure prints one line starting with {@code ssi-launcher:} to
 * stderr and exits 1 (details go to stdout, which the caller logs).
 */
public final class ElasticsearchLauncher {

    private static final String NETTY4 = "transport-netty4";
    private static final String NODE_NAME = "ssi-plugin-local";
    private static final String USAGE = "--home DIR --data DIR --logs DIR --port N --ready-file FILE [--parent-pid PID]";

    private ElasticsearchLauncher() {}

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
            .put("cluster.name", NODE_NAME)
            .put("node.name", NODE_NAME)
            .put("discovery.type", "single-node")
            .put("network.host", "127.0.0.1")
            .put("http.port", port)
            .put("transport.port", "0")
            .put("cluster.routing.allocation.disk.threshold_enabled", false)
            .put("indices.breaker.total.use_real_memory", false)
            .build();

        if (options.containsKey("parent-pid")) {
            exitWith(Long.parseLong(options.get("parent-pid")));
        }

        // the native-access library looks for the distribution's lib/platform under es.path.home
        System.setProperty("es.path.home", home.toString());
        Node node;
        try {
            LogConfigurator.configureESLogging();
            installModules(home);
            Environment environment = InternalSettingsPreparer.prepareEnvironment(
                settings, new HashMap<>(), home.resolve("config"), () -> NODE_NAME);
            PluginsLoader plugins = PluginsLoader.createPluginsLoader(
                PluginsLoader.loadModulesBundles(environment.modulesDir()),
                PluginsLoader.loadPluginsBundles(environment.pluginsDir()),
                Map.of(),
                false); // the server is not a named module here: it has no qualified exports to add
            node = new Node(environment, plugins);
            installShutdown(node, home);
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

    /**
     * Lays out {@code home/modules/transport-netty4} (jars + descriptor) and an empty
     * {@code home/plugins}; modules/ is rebuilt from scratch each time, since the server
     * would load whatever else it found there.
     */
    private static void installModules(Path home) throws IOException {
        Path source = buildDir().resolve("modules").resolve(NETTY4);
        if (!Files.isDirectory(source)) {
            throw new IllegalStateException("the launcher build has no " + source + "; rebuild it with Maven");
        }
        Path modules = home.resolve("modules");
        deleteTree(modules);
        Path target = Files.createDirectories(modules.resolve(NETTY4));
        Path moduleJar = null;
        try (Stream<Path> jars = Files.list(source)) {
            for (Path jar : jars.filter(p -> p.toString().endsWith(".jar")).toList()) {
                Files.copy(jar, target.resolve(jar.getFileName()));
                if (jar.getFileName().toString().startsWith(NETTY4 + "-")) {
                    moduleJar = jar;
                }
            }
        }
        if (moduleJar == null) {
            throw new IllegalStateException("no " + NETTY4 + " jar in " + source + "; rebuild the launcher with Maven");
        }
        writeClasspathDescriptor(moduleJar, target.resolve("plugin-descriptor.properties"));
        Files.createDirectories(home.resolve("plugins"));
        Files.createDirectories(home.resolve("config"));
    }

    /** The descriptor the module jar carries, as a non-modular module. */
    private static void writeClasspathDescriptor(Path moduleJar, Path target) throws IOException {
        String entry = "META-INF/es-plugins/" + NETTY4 + "/plugin-descriptor.properties";
        Properties descriptor = new Properties();
        try (JarFile jar = new JarFile(moduleJar.toFile())) {
            JarEntry found = jar.getJarEntry(entry);
            if (found == null) {
                throw new IllegalStateException(moduleJar + " has no " + entry);
            }
            try (InputStream in = jar.getInputStream(found)) {
                descriptor.load(in);
            }
        }
        descriptor.remove("modulename");
        try (Writer out = Files.newBufferedWriter(target, StandardCharsets.ISO_8859_1)) {
            descriptor.store(out, "written by the ssi-plugin launcher from " + moduleJar.getFileName());
        }
    }

    /** The folder holding launcher.jar, lib/ and modules/. */
    private static Path buildDir() {
        try {
            Path code = Paths.get(ElasticsearchLauncher.class.getProtectionDomain().getCodeSource().getLocation().toURI());
            return code.getParent();
        } catch (URISyntaxException e) {
            throw new IllegalStateException("cannot locate the launcher build", e);
        }
    }

    private static void deleteTree(Path root) throws IOException {
        if (!Files.exists(root)) {
            return;
        }
        try (Stream<Path> paths = Files.walk(root)) {
            paths.sorted(Comparator.reverseOrder()).forEach(path -> {
                try {
                    Files.delete(path);
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            });
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

    /**
     * SIGTERM/SIGINT exit 0 through the shutdown hook, which closes the node and removes
     * the module folder this launcher laid out, leaving path.home as it was given.
     */
    private static void installShutdown(Node node, Path home) {
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                node.close();
                node.awaitClose(20, TimeUnit.SECONDS);
                deleteTree(home.resolve("modules").resolve(NETTY4));
            } catch (IOException | UncheckedIOException | InterruptedException e) {
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
            "{\"url\": \"%s\", \"pid\": %d, \"engine\": \"elasticsearch\", \"version\": \"%s\"}%n",
            url, ProcessHandle.current().pid(), Build.current().version());
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
        String parent = options.get("parent-pid");
        if (parent != null && !parent.matches("[0-9]+")) {
            throw new IllegalArgumentException("--parent-pid " + parent + " is not a process id; usage: " + USAGE);
        }
        return options;
    }
}
