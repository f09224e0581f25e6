package org.ssiplugin.launcher;

import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
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

/**
 * Runs one OpenSearch node in this JVM, with the modules ssi-plugin needs loaded as
 * classpath plugins (no distribution, no plugin folders): a single-node cluster, or one
 * member of a local cluster on loopback.
 *
 * <p>It speaks the protocol shared by every ssi-plugin launcher ({@link LauncherSupport}).
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

    /**
     * Plugins whose jars the build unpacks from their published zips into lib/; loaded by
     * name since they are not on the compile classpath. k-NN: Lucene engine only (pom.xml).
     */
    private static final List<String> PLUGINS_BY_NAME = List.of("org.opensearch.knn.plugin.KNNPlugin");

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
        LauncherSupport.run("opensearch", args, BindHttpException.class, OpenSearchLauncher::start);
    }

    private static String start(LauncherSupport.Options options) throws Exception {
        Settings.Builder settings = Settings.builder();
        options.nodeSettings().forEach(settings::put);
        if (options.clustered() && options.initialClusterManagers() != null) {
            settings.put("cluster.initial_cluster_manager_nodes", options.initialClusterManagers());
        }
        Environment environment = InternalSettingsPreparer.prepareEnvironment(
            settings.build(), new HashMap<>(), options.home().resolve("config"), options::nodeName);
        Node node = new EmbeddedNode(environment, plugins());
        LauncherSupport.closeOnExit(() -> {
            node.close();
            node.awaitClose(20, TimeUnit.SECONDS);
        });
        node.start();
        ClusterService cluster = node.injector().getInstance(ClusterService.class);
        LauncherSupport.awaitRecovered(() -> !cluster.state().blocks().hasGlobalBlock(GatewayService.STATE_NOT_RECOVERED_BLOCK));
        return Version.CURRENT.toString();
    }

    private static List<Class<? extends Plugin>> plugins() throws ClassNotFoundException {
        List<Class<? extends Plugin>> plugins = new ArrayList<>(MODULES);
        for (String name : PLUGINS_BY_NAME) {
            plugins.add(Class.forName(name).asSubclass(Plugin.class));
        }
        return plugins;
    }
}
