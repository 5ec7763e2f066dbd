import Foundation
import Hummingbird
import HummingbirdTesting
import Planning
import Prometheus
import Testing
@testable import Service

/// What the usage monitor last read from each load-balancer node's HAProxy stats socket, at the router: `/api/status`
/// lists every backend server's status by region and node, and `/metrics` has one `stacklab_haproxy_server_up` each.
@Suite struct BalancerHealthTests {
    @Test func apiStatusAndMetricsReportEachBackendServer() async throws {
        let configuration = ServiceConfiguration(repository: "/nonexistent", stateDirectory: NSTemporaryDirectory() + "/stacklab-balancers-\(UUID())",
                                                 token: "op-token", webhookSecret: "s3cret")
        let server = GitOpsServer(configuration: configuration, host: "127.0.0.1", port: 0, registry: PrometheusCollectorRegistry())
        let state = ServiceState(stateDirectory: configuration.stateDirectory)
        let router = Router(context: ServiceRequestContext.self)
        server.routes(router, state: state)
        state.update("lab") { _ in }
        // As `show stat` reports them: a member up, one down after its checks failed, a public domain's unchecked server.
        let csv = """
            # pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,
            http-in,FRONTEND,,,0,1,262119,3,,,,,,,,,,OPEN,,,,,,,,,1,2,0,,,,0,0,0,1,,
            lb:acme:shop:http,web-1,0,0,0,1,,2,,,,,,0,0,0,0,UP,1,1,0,0,0,12,0,,1,3,1,,2,,2,0,,1,L7OK,
            lb:acme:shop:http,web-2,0,0,0,0,,0,,,,,,0,0,0,0,DOWN,1,1,0,2,1,3,3,,1,3,2,,0,,2,0,,0,L7STS,
            lb:acme:shop:http,BACKEND,0,0,0,1,26212,2,,,,,,0,0,0,0,UP,1,1,0,,0,12,0,,1,3,0,,2,,1,0,,1,,
            pd:kzm07fi6p4,web-1,0,0,0,0,,0,,,,,,0,0,0,0,no check,1,1,0,,,12,,,1,4,1,,0,,2,0,,0,,

            """
        let servers = ProxyServerHealth.parse(stats: csv)
        #expect(servers.map { "\($0.backend) \($0.server) \($0.status) \($0.check ?? "-")" }
                == ["lb:acme:shop:http web-1 UP L7OK", "lb:acme:shop:http web-2 DOWN L7STS", "pd:kzm07fi6p4 web-1 no check -"])
        state.usage.record("lab", nodes: [:], balancers: ["lab-lb": servers])
        try await Application(router: router).test(.router) { client in
            let headers: HTTPFields = [.authorization: "Bearer op-token"]
            let status = try await client.execute(uri: "/api/status", method: .get, headers: headers)
            let json = try JSONSerialization.jsonObject(with: Data(buffer: status.body)) as? [String: Any]
            let lab = (json?["loadBalancers"] as? [String: Any])?["lab"] as? [String: Any]
            let reported = (lab?["lab-lb"] as? [[String: Any]])?.map { "\($0["server"] ?? "") \($0["status"] ?? "")" }
            #expect(reported == ["web-1 UP", "web-2 DOWN", "web-1 no check"], "\(String(buffer: status.body).prefix(2000))")
            let metrics = String(buffer: try await client.execute(uri: "/metrics", method: .get, headers: headers).body)
            #expect(metrics.contains("stacklab_haproxy_server_up{region=\"lab\",node=\"lab-lb\",backend=\"lb:acme:shop:http\",server=\"web-2\"} 0"), "\(metrics.suffix(1500))")
            #expect(metrics.contains("stacklab_haproxy_server_up{region=\"lab\",node=\"lab-lb\",backend=\"lb:acme:shop:http\",server=\"web-1\"} 1"))
        }
    }
}
