// Shared by sable_fix_client.cpp and sable_fix_echo_acceptor.cpp: the line-oriented event
// printer, `tag=value|...` conversion, and a QuickFIX Log that turns session events into
// printed lines. Test-only code; see README.md in this directory for the protocol.
#pragma once

#include <quickfix/FileLog.h>
#include <quickfix/Log.h>
#include <quickfix/Message.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace sable_fix {

// Every line goes out whole and flushed at once: the QuickFIX thread, the timer and the stdin
// thread all print, and the reader on the other end of the pipe parses line by line.
inline void emit(const std::string& kind, const std::string& text = "") {
    static std::mutex mutex;
    std::lock_guard<std::mutex> lock(mutex);
    std::string line = kind;
    if (!text.empty()) {
        line += ' ';
        line += text;
    }
    // A line break inside a value (a Text field, an exception message) would split the event.
    for (char& c : line) {
        if (c == '\n' || c == '\r') c = ' ';
    }
    line += '\n';
    std::fwrite(line.data(), 1, line.size(), stdout);
    std::fflush(stdout);
}

// Lines held back on the current thread until QuickFIX has counted the message they report:
// QuickFIX calls fromApp/fromAdmin *before* it increments the next expected target MsgSeqNum, so
// a driver that saw `recv_app` and at once asked for `seqnums` (or set the target number to force
// a gap) would race the QuickFIX thread. The client's store wrapper flushes them right after the
// increment; anything QuickFIX logs or sends first flushes them too, so the order of lines stays
// the order of what happened.
inline std::vector<std::pair<std::string, std::string>>& deferred_lines() {
    static thread_local std::vector<std::pair<std::string, std::string>> lines;
    return lines;
}

inline void defer(const std::string& kind, const std::string& text) { deferred_lines().emplace_back(kind, text); }

inline void flush_deferred() {
    auto& lines = deferred_lines();
    for (const auto& line : lines) emit(line.first, line.second);
    lines.clear();
}

// Wire form (SOH separators) to the printed form (`|` separators, no trailing separator).
inline std::string to_pipes(const std::string& wire) {
    std::string out = wire;
    for (char& c : out) {
        if (c == '\x01') c = '|';
    }
    while (!out.empty() && out.back() == '|') out.pop_back();
    return out;
}

inline std::string to_pipes(const FIX::Message& message) {
    std::string wire;
    message.toString(wire);
    return to_pipes(wire);
}

using Fields = std::vector<std::pair<int, std::string>>;

// Parses `35=D|11=a|...` (also accepts SOH separators). Empty segments are skipped; a value may
// contain `=` (split at the first one) but not `|`. Returns false and sets `error` on bad input.
inline bool parse_fields(const std::string& text, Fields& out, std::string& error) {
    size_t start = 0;
    while (start <= text.size()) {
        size_t end = text.find_first_of("|\x01", start);
        if (end == std::string::npos) end = text.size();
        std::string segment = text.substr(start, end - start);
        start = end + 1;
        if (segment.empty()) continue;
        size_t eq = segment.find('=');
        if (eq == 0 || eq == std::string::npos) {
            error = "bad field '" + segment + "' (want tag=value)";
            return false;
        }
        std::string tag_text = segment.substr(0, eq);
        char* tail = nullptr;
        long tag = std::strtol(tag_text.c_str(), &tail, 10);
        if (*tail != '\0' || tag <= 0 || tag > 999999) {
            error = "bad tag '" + tag_text + "'";
            return false;
        }
        out.emplace_back(static_cast<int>(tag), segment.substr(eq + 1));
    }
    return true;
}

// A Log that prints what a test needs to see and, when a directory was given, also writes
// QuickFIX's ordinary FileLog there.
//   - outgoing wire messages -> `sent_app` / `sent_admin` (only what really went on the socket,
//     with the final MsgSeqNum, BodyLength and CheckSum, including resends);
//   - session events -> `event <text>`, and additionally `reject <text>` when QuickFIX rejected
//     an incoming message ("Message 7 Rejected: Value is incorrect (out of range) for this
//     tag:54") or could not parse one ("Invalid message: ...").
class EventLog : public FIX::Log {
public:
    explicit EventLog(FIX::Log* file_log) : m_file(file_log) {}

    void clear() override {
        if (m_file) m_file->clear();
    }
    void backup() override {
        if (m_file) m_file->backup();
    }
    void onIncoming(const std::string& wire) override {
        flush_deferred();
        if (m_file) m_file->onIncoming(wire);
    }
    void onOutgoing(const std::string& wire) override {
        flush_deferred();
        if (m_file) m_file->onOutgoing(wire);
        emit(is_admin(wire) ? "sent_admin" : "sent_app", to_pipes(wire));
    }
    void onEvent(const std::string& text) override {
        flush_deferred();
        if (m_file) m_file->onEvent(text);
        emit("event", text);
        if (text.find(" Rejected") != std::string::npos || text.rfind("Invalid message", 0) == 0) {
            emit("reject", text);
        }
    }

    FIX::Log* file_log() const { return m_file; }

private:
    static bool is_admin(const std::string& wire) {
        size_t at = wire.find("\x01" "35=");
        if (at == std::string::npos) return false;
        size_t end = wire.find('\x01', at + 4);
        std::string type = wire.substr(at + 4, end == std::string::npos ? std::string::npos : end - at - 4);
        return FIX::Message::isAdminMsgType(FIX::MsgType(type));
    }

    FIX::Log* m_file;
};

class EventLogFactory : public FIX::LogFactory {
public:
    // `log_dir` empty: no files are written.
    explicit EventLogFactory(const std::string& log_dir) {
        if (!log_dir.empty()) m_file.reset(new FIX::FileLogFactory(log_dir));
    }

    FIX::Log* create() override { return new EventLog(m_file ? m_file->create() : nullptr); }
    FIX::Log* create(const FIX::SessionID& id) override {
        return new EventLog(m_file ? m_file->create(id) : nullptr);
    }
    void destroy(FIX::Log* log) override {
        auto* event_log = static_cast<EventLog*>(log);
        if (m_file && event_log->file_log()) m_file->destroy(event_log->file_log());
        delete event_log;
    }

private:
    std::unique_ptr<FIX::FileLogFactory> m_file;
};

// The process's own TCP sockets, found through /proc/self/fd. QuickFIX does not expose its file
// descriptors; tests need them to learn an ephemeral listening port and to cut a connection the
// way a network failure would (shutdown(2) is safe from any thread, unlike Session::disconnect
// racing the QuickFIX thread).
struct SocketInfo {
    int fd;
    int local_port;
    int peer_port;  // 0 when not connected (a listening socket)
};

inline std::vector<SocketInfo> own_tcp_sockets() {
    std::vector<SocketInfo> result;
    DIR* dir = opendir("/proc/self/fd");
    if (!dir) return result;
    while (dirent* entry = readdir(dir)) {
        char* tail = nullptr;
        long fd = std::strtol(entry->d_name, &tail, 10);
        if (*tail != '\0' || entry->d_name[0] == '\0') continue;
        struct stat st;
        if (fstat(static_cast<int>(fd), &st) != 0 || !S_ISSOCK(st.st_mode)) continue;
        sockaddr_storage local{};
        socklen_t len = sizeof local;
        if (getsockname(static_cast<int>(fd), reinterpret_cast<sockaddr*>(&local), &len) != 0) continue;
        auto port_of = [](const sockaddr_storage& a) -> int {
            if (a.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in&>(a).sin_port);
            if (a.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6&>(a).sin6_port);
            return -1;
        };
        int local_port = port_of(local);
        if (local_port < 0) continue;
        sockaddr_storage peer{};
        len = sizeof peer;
        int peer_port = getpeername(static_cast<int>(fd), reinterpret_cast<sockaddr*>(&peer), &len) == 0
                            ? port_of(peer)
                            : 0;
        result.push_back({static_cast<int>(fd), local_port, peer_port});
    }
    closedir(dir);
    return result;
}

}  // namespace sable_fix
