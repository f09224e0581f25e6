package org.ssiplugin.launcher;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.io.Writer;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.Comparator;
import java.util.HashMap;
import java.util.Map;
import java.util.Properties;
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
 * <p>It speaks the protocol shared by every ssi-plugin launcher ({@link LauncherSupport}).
 */
public final class ElasticsearchLauncher {

    private static final String NETTY4 = "transport-netty4";

    private ElasticsearchLauncher() {}

    public static void main(String[] args) {
        LauncherSupport.run("elasticsearch", args, BindHttpException.class, ElasticsearchLauncher::start);
    }

    private static String start(LauncherSupport.Options options) throws Exception {
        if (options.clustered()) {
            throw new IllegalArgumentException("the Elasticsearch core node runs as a single-node cluster only");
        }
        Path home = options.home();
        Settings.Builder settings = Settings.builder();
        options.nodeSettings().forEach(settings::put);
        settings.put("transport.port", "0");
        // the native-access library looks for the distribution's lib/platform under es.path.home
        System.setProperty("es.path.home", home.toString());
        LogConfigurator.configureESLogging();
        installModules(home);
        Environment environment = InternalSettingsPreparer.prepareEnvironment(
            settings.build(), new HashMap<>(), home.resolve("config"), () -> LauncherSupport.NODE_NAME);
        PluginsLoader plugins = PluginsLoader.createPluginsLoader(
            PluginsLoader.loadModulesBundles(environment.modulesDir()),
            PluginsLoader.loadPluginsBundles(environment.pluginsDir()),
            Map.of(),
            false); // the server is not a named module here: it has no qualified exports to add
        Node node = new Node(environment, plugins);
        // closing the node also removes the module folder laid out above, leaving path.home as it was given
        LauncherSupport.closeOnExit(() -> {
            node.close();
            node.awaitClose(20, TimeUnit.SECONDS);
            deleteTree(home.resolve("modules").resolve(NETTY4));
        });
        node.start();
        ClusterService cluster = node.injector().getInstance(ClusterService.class);
        LauncherSupport.awaitRecovered(() -> !cluster.state().blocks().hasGlobalBlock(GatewayService.STATE_NOT_RECOVERED_BLOCK));
        return Build.current().version();
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
}
