import Foundation
import Pipeline

/// What a worker has done, for its `/metrics` endpoint in Prometheus text
/// format: jobs by final status, jobs running, and stage durations as
/// histograms.
public final class WorkerMetrics: @unchecked Sendable {
    /// Histogram bucket bounds in seconds.
    public static let buckets: [Double] = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300]

    private struct Histogram {
        var counts = Array(repeating: 0, count: WorkerMetrics.buckets.count)
        var sum = 0.0
        var total = 0
    }

    private let lock = NSLock()
    private var ended: [String: Int] = [:]
    private var running = 0
    private var stages: [Stage: Histogram] = [:]

    public init() {}

    func jobStarted() { lock.withLock { running += 1 } }

    func jobEnded(_ record: JobRecord?) {
        lock.withLock {
            running -= 1
            guard let record else { return }
            ended[record.status.rawValue, default: 0] += 1
            for stage in record.stages {
                var histogram = stages[stage.stage] ?? Histogram()
                for (index, bound) in Self.buckets.enumerated() where stage.seconds <= bound {
                    histogram.counts[index] += 1
                }
                histogram.sum += stage.seconds
                histogram.total += 1
                stages[stage.stage] = histogram
            }
        }
    }

    /// The exposition text; `queueDepth` is read from the store at scrape time.
    public func prometheusText(queueDepth: Int?) -> String {
        lock.withLock {
            var lines = [
                "# HELP kiln_jobs_total Jobs this worker ran to an end, by final status.",
                "# TYPE kiln_jobs_total counter",
            ]
            for status in ["COMPLETED", "FAILED", "STOPPED", "STARTING"] {
                lines.append("kiln_jobs_total{status=\"\(status)\"} \(ended[status] ?? 0)")
            }
            lines += [
                "# HELP kiln_jobs_failed_total Jobs this worker ran that ended FAILED.",
                "# TYPE kiln_jobs_failed_total counter", "kiln_jobs_failed_total \(ended["FAILED"] ?? 0)",
                "# HELP kiln_jobs_running Jobs running in this worker now.", "# TYPE kiln_jobs_running gauge",
                "kiln_jobs_running \(running)",
            ]
            if let queueDepth {
                lines += [
                    "# HELP kiln_queue_depth Jobs queued (STARTING) in the job store.", "# TYPE kiln_queue_depth gauge",
                    "kiln_queue_depth \(queueDepth)",
                ]
            }
            lines += [
                "# HELP kiln_stage_duration_seconds How long each pipeline stage took.",
                "# TYPE kiln_stage_duration_seconds histogram",
            ]
            for stage in Stage.allCases {
                let histogram = stages[stage] ?? Histogram()
                for (index, bound) in Self.buckets.enumerated() {
                    lines.append(
                        "kiln_stage_duration_seconds_bucket{stage=\"\(stage.rawValue)\",le=\"\(bound)\"} \(histogram.counts[index])"
                    )
                }
                lines.append(
                    "kiln_stage_duration_seconds_bucket{stage=\"\(stage.rawValue)\",le=\"+Inf\"} \(histogram.total)")
                lines.append("kiln_stage_duration_seconds_sum{stage=\"\(stage.rawValue)\"} \(histogram.sum)")
                lines.append("kiln_stage_duration_seconds_count{stage=\"\(stage.rawValue)\"} \(histogram.total)")
            }
            return lines.joined(separator: "\n") + "\n"
        }
    }
}
