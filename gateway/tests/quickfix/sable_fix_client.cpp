// sable-fix-client: a scriptable FIX 4.4 initiator on QuickFIX C++ (Debian libquickfix-dev
// 1.15.1), used by sable's integration tests as an independent, real FIX engine.
//
// Commands arrive one per line on stdin; events leave one per line on stdout, flushed per line.
// Every command is answered by `ok <command> [detail]` or `error <command>: <why>` once it has
// taken effect, so a driver can synchronise on that instead of sleeping. README.md in this
// directory is the reference for flags, commands and events.
//
// Built by gateway/scripts/install-test-deps.sh; the flags it needs are explained there.

#include "sable_fix_common.h"

#include <quickfix/Application.h>
#include <quickfix/FileStore.h>
#include <quickfix/MessageStore.h>
#include <quickfix/Session.h>
#include <quickfix/SessionSettings.h>
#include <quickfix/SocketInitiator.h>

#include <chrono>
#include <condition_variable>
#include <iostream>
#include <map>
#include <sstream>

using sable_fix::defer;
using sable_fix::emit;
using sable_fix::flush_deferred;
using sable_fix::Fields;
using sable_fix::to_pipes;

namespace {

const char USAGE[] =
    "usage: sable-fix-client --port N --sender ID --target ID [options]\n"
    "  --host H                      connect host (127.0.0.1)\n"
    "  --heartbeat S                 HeartBtInt (30)\n"
    "  --username U / --password P   put into Logon as 553 / 554\n"
    "  --logon-field TAG=VALUE       extra Logon field, repeatable (e.g. 8013=Y)\n"
    "  --reset-on-logon Y|N          ResetOnLogon (N); Y sends 141=Y and starts at 1\n"
    "  --store-dir DIR               FileStore in DIR (sequence numbers survive restarts);\n"
    "                                without it a MemoryStore is used\n"
    "  --log-dir DIR                 QuickFIX FileLog in DIR (off without it)\n"
    "  --data-dictionary PATH        UseDataDictionary=Y, DataDictionary=PATH (else N)\n"
    "  --validate-user-defined-fields Y|N, --validate-fields-out-of-order Y|N,\n"
    "  --validate-fields-have-values Y|N, --allow-unknown-msg-fields Y|N\n"
    "                                the QuickFIX settings of those names\n"
    "  --reconnect-interval S        ReconnectInterval (1)\n"
    "  --setting KEY=VALUE           any other QuickFIX session setting, repeatable\n";

// Header fields QuickFIX fills or strips itself (Session::send drops 43 and 122; fill() sets
// 8, 49, 56, 34, 52). A `send` that names one of them means it: the value is put back in
// toApp/toAdmin, after QuickFIX filled the header, on the sending thread only.
thread_local const Fields* t_header_overrides = nullptr;

class Client : public FIX::Application {
public:
    Client(std::string username, std::string password, Fields logon_fields)
        : m_username(std::move(username)), m_password(std::move(password)), m_logon_fields(std::move(logon_fields)) {}

    void onCreate(const FIX::SessionID& id) override { emit("created", id.toString()); }

    void onLogon(const FIX::SessionID&) override {
        // Print before waking a waiting command, so `logon` precedes its `ok` (and `quit`'s exit).
        flush_deferred();
        emit("logon");
        {
            std::lock_guard<std::mutex> lock(m_mutex);
            m_logged_on = true;
        }
        m_changed.notify_all();
    }

    void onLogout(const FIX::SessionID&) override {
        // Print before waking a waiting command, so `logout` precedes its `ok` (and `quit`'s exit).
        flush_deferred();
        emit("logout");
        {
            std::lock_guard<std::mutex> lock(m_mutex);
            m_logged_on = false;
        }
        m_changed.notify_all();
    }

    void toAdmin(FIX::Message& message, const FIX::SessionID&) override {
        const FIX::Header& header = message.getHeader();
        if (header.getField(FIX::FIELD::MsgType) == FIX::MsgType_Logon) {
            if (!m_username.empty()) message.setField(FIX::Username(m_username));
            if (!m_password.empty()) message.setField(FIX::Password(m_password));
            for (const auto& field : m_logon_fields) {
                if (FIX::Message::isHeaderField(field.first)) {
                    message.getHeader().setField(field.first, field.second);
                } else {
                    message.setField(field.first, field.second);
                }
            }
        }
        apply_overrides(message);
    }

    void toApp(FIX::Message& message, const FIX::SessionID&) throw(FIX::DoNotSend) override {
        apply_overrides(message);
    }

    void fromAdmin(const FIX::Message& message, const FIX::SessionID&) throw(
        FIX::FieldNotFound, FIX::IncorrectDataFormat, FIX::IncorrectTagValue, FIX::RejectLogon) override {
        flush_deferred();
        defer("recv_admin", to_pipes(message));
    }

    void fromApp(const FIX::Message& message, const FIX::SessionID&) throw(
        FIX::FieldNotFound, FIX::IncorrectDataFormat, FIX::IncorrectTagValue, FIX::UnsupportedMessageType) override {
        flush_deferred();
        defer("recv_app", to_pipes(message));
    }

    // Waits until the logged-on state equals `want`; false on timeout.
    bool wait_logged_on(bool want, std::chrono::milliseconds timeout) {
        std::unique_lock<std::mutex> lock(m_mutex);
        return m_changed.wait_for(lock, timeout, [&] { return m_logged_on == want; });
    }

    bool logged_on() {
        std::lock_guard<std::mutex> lock(m_mutex);
        return m_logged_on;
    }

private:
    static void apply_overrides(FIX::Message& message) {
        if (!t_header_overrides) return;
        for (const auto& field : *t_header_overrides) message.getHeader().setField(field.first, field.second);
    }

    std::string m_username;
    std::string m_password;
    Fields m_logon_fields;
    std::mutex m_mutex;
    std::condition_variable m_changed;
    bool m_logged_on = false;
};

// Forwards to the real store (MemoryStore or FileStore) and prints the held-back recv_* lines once
// QuickFIX has counted the message (see sable_fix::defer): after a `recv_app` line, `seqnums`
// and `set_next_target_seq` see the counter with that message included.
class CountingStore : public FIX::MessageStore {
public:
    CountingStore(FIX::MessageStoreFactory& factory, FIX::MessageStore* inner) : m_factory(factory), m_inner(inner) {}
    ~CountingStore() override { m_factory.destroy(m_inner); }

    bool set(int n, const std::string& m) throw(FIX::IOException) override { return m_inner->set(n, m); }
    void get(int b, int e, std::vector<std::string>& out) const throw(FIX::IOException) override {
        m_inner->get(b, e, out);
    }
    int getNextSenderMsgSeqNum() const throw(FIX::IOException) override { return m_inner->getNextSenderMsgSeqNum(); }
    int getNextTargetMsgSeqNum() const throw(FIX::IOException) override { return m_inner->getNextTargetMsgSeqNum(); }
    void setNextSenderMsgSeqNum(int n) throw(FIX::IOException) override { m_inner->setNextSenderMsgSeqNum(n); }
    void setNextTargetMsgSeqNum(int n) throw(FIX::IOException) override {
        m_inner->setNextTargetMsgSeqNum(n);
        flush_deferred();
    }
    void incrNextSenderMsgSeqNum() throw(FIX::IOException) override { m_inner->incrNextSenderMsgSeqNum(); }
    void incrNextTargetMsgSeqNum() throw(FIX::IOException) override {
        m_inner->incrNextTargetMsgSeqNum();
        flush_deferred();
    }
    FIX::UtcTimeStamp getCreationTime() const throw(FIX::IOException) override { return m_inner->getCreationTime(); }
    void reset() throw(FIX::IOException) override { m_inner->reset(); }
    void refresh() throw(FIX::IOException) override { m_inner->refresh(); }

private:
    FIX::MessageStoreFactory& m_factory;
    FIX::MessageStore* m_inner;
};

class CountingStoreFactory : public FIX::MessageStoreFactory {
public:
    explicit CountingStoreFactory(FIX::MessageStoreFactory& inner) : m_inner(inner) {}
    FIX::MessageStore* create(const FIX::SessionID& id) override { return new CountingStore(m_inner, m_inner.create(id)); }
    void destroy(FIX::MessageStore* store) override { delete store; }

private:
    FIX::MessageStoreFactory& m_inner;
};

// Lets `send` put body fields on the wire in exactly the given order, repeated tags included:
// FIX::FieldMap::setField keeps the body sorted by tag number, which would scramble repeating
// groups and hide duplicates; FieldMap::appendField (protected) keeps insertion order.
class OrderedMessage : public FIX::Message {
public:
    void append(int tag, const std::string& value) { appendField(FIX::FieldBase(tag, value)); }
};

struct Options {
    std::string host = "127.0.0.1";
    std::string port;
    std::string sender;
    std::string target;
    std::string heartbeat = "30";
    std::string username;
    std::string password;
    Fields logon_fields;
    std::string store_dir;
    std::string log_dir;
    std::string reconnect_interval = "1";
    std::map<std::string, std::string> session_settings;  // ordered so the file is reproducible
};

[[noreturn]] void usage_error(const std::string& message) {
    std::cerr << "sable-fix-client: " << message << "\n" << USAGE;
    std::exit(2);
}

std::string yes_no(const std::string& flag, const std::string& value) {
    if (value != "Y" && value != "N") usage_error(flag + " wants Y or N, got '" + value + "'");
    return value;
}

Options parse_args(int argc, char** argv) {
    Options o;
    o.session_settings["ResetOnLogon"] = "N";
    o.session_settings["UseDataDictionary"] = "N";
    for (int i = 1; i < argc; ++i) {
        std::string flag = argv[i];
        if (flag == "--help" || flag == "-h") {
            std::cout << USAGE;
            std::exit(0);
        }
        if (i + 1 >= argc) usage_error("missing value after " + flag);
        std::string value = argv[++i];
        if (flag == "--host") o.host = value;
        else if (flag == "--port") o.port = value;
        else if (flag == "--sender") o.sender = value;
        else if (flag == "--target") o.target = value;
        else if (flag == "--heartbeat") o.heartbeat = value;
        else if (flag == "--username") o.username = value;
        else if (flag == "--password") o.password = value;
        else if (flag == "--logon-field") {
            std::string error;
            if (!sable_fix::parse_fields(value, o.logon_fields, error)) usage_error("--logon-field: " + error);
        } else if (flag == "--reset-on-logon") o.session_settings["ResetOnLogon"] = yes_no(flag, value);
        else if (flag == "--store-dir") o.store_dir = value;
        else if (flag == "--log-dir") o.log_dir = value;
        else if (flag == "--data-dictionary") {
            o.session_settings["UseDataDictionary"] = "Y";
            o.session_settings["DataDictionary"] = value;
        } else if (flag == "--validate-user-defined-fields") {
            o.session_settings["ValidateUserDefinedFields"] = yes_no(flag, value);
        } else if (flag == "--validate-fields-out-of-order") {
            o.session_settings["ValidateFieldsOutOfOrder"] = yes_no(flag, value);
        } else if (flag == "--validate-fields-have-values") {
            o.session_settings["ValidateFieldsHaveValues"] = yes_no(flag, value);
        } else if (flag == "--allow-unknown-msg-fields") {
            o.session_settings["AllowUnknownMsgFields"] = yes_no(flag, value);
        } else if (flag == "--reconnect-interval") o.reconnect_interval = value;
        else if (flag == "--setting") {
            size_t eq = value.find('=');
            if (eq == 0 || eq == std::string::npos) usage_error("--setting wants KEY=VALUE");
            o.session_settings[value.substr(0, eq)] = value.substr(eq + 1);
        } else usage_error("unknown flag " + flag);
    }
    if (o.port.empty() || o.sender.empty() || o.target.empty()) usage_error("--port, --sender and --target are required");
    return o;
}

// QuickFIX reads its configuration from an INI-style stream; generating it keeps every knob a
// command-line flag. Explicit settings come last so they override the defaults above them.
std::string settings_text(const Options& o) {
    std::map<std::string, std::string> s;
    s["ConnectionType"] = "initiator";
    s["BeginString"] = "FIX.4.4";
    s["SenderCompID"] = o.sender;
    s["TargetCompID"] = o.target;
    s["SocketConnectHost"] = o.host;
    s["SocketConnectPort"] = o.port;
    s["HeartBtInt"] = o.heartbeat;
    s["ReconnectInterval"] = o.reconnect_interval;
    // Always in session: tests run at any hour.
    s["StartTime"] = "00:00:00";
    s["EndTime"] = "00:00:00";
    s["SocketNodelay"] = "Y";
    if (!o.store_dir.empty()) s["FileStorePath"] = o.store_dir;
    if (!o.log_dir.empty()) s["FileLogPath"] = o.log_dir;
    for (const auto& kv : o.session_settings) s[kv.first] = kv.second;
    // Everything goes under [DEFAULT], which the one [SESSION] inherits: QuickFIX 1.15 reads
    // some initiator-wide keys (ReconnectInterval, SocketNodelay) only from [DEFAULT].
    std::string text = "[DEFAULT]\n";
    for (const auto& kv : s) text += kv.first + "=" + kv.second + "\n";
    return text + "[SESSION]\n";
}

std::string trim(const std::string& s) {
    size_t b = s.find_first_not_of(" \t\r");
    if (b == std::string::npos) return "";
    size_t e = s.find_last_not_of(" \t\r");
    return s.substr(b, e - b + 1);
}

bool parse_int(const std::string& text, long& out) {
    if (text.empty()) return false;
    char* tail = nullptr;
    out = std::strtol(text.c_str(), &tail, 10);
    return *tail == '\0';
}

class Driver {
public:
    Driver(Client& app, FIX::SessionID id, int port) : m_app(app), m_id(std::move(id)), m_port(port) {}

    // Runs one command line; returns false when the process should exit.
    bool run(const std::string& line) {
        std::string text = trim(line);
        if (text.empty() || text[0] == '#') return true;
        size_t space = text.find(' ');
        std::string cmd = text.substr(0, space);
        std::string arg = space == std::string::npos ? "" : trim(text.substr(space + 1));
        try {
            return dispatch(cmd, arg);
        } catch (const std::exception& e) {
            emit("error", cmd + ": " + e.what());
        }
        return true;
    }

    // Logs out (bounded wait for the counterparty's Logout; QuickFIX sends it on its next 1 s
    // timer tick). Returns whether the logout completed; the caller then leaves with _exit, not
    // Initiator::stop: the QuickFIX thread would only notice a stop at its next 1 s poll, and
    // there is nothing left to save (FileStore and FileLog flush every write).
    bool logout_for_exit() {
        FIX::Session* session = FIX::Session::lookupSession(m_id);
        if (!session || !m_app.logged_on()) return true;
        session->logout();
        return m_app.wait_logged_on(false, std::chrono::seconds(5));
    }

private:
    bool dispatch(const std::string& cmd, const std::string& arg) {
        FIX::Session* session = FIX::Session::lookupSession(m_id);
        if (!session) throw std::runtime_error("session " + m_id.toString() + " not found");
        if (cmd == "send") {
            send(arg);
        } else if (cmd == "logon") {
            session->logon();
            ok(cmd);
        } else if (cmd == "logout") {
            session->logout(arg);
            ok(cmd);
        } else if (cmd == "wait_logon" || cmd == "wait_logout") {
            long seconds = 10;
            if (!arg.empty() && (!parse_int(arg, seconds) || seconds < 0)) throw std::runtime_error("bad timeout '" + arg + "'");
            if (!m_app.wait_logged_on(cmd == "wait_logon", std::chrono::seconds(seconds))) {
                throw std::runtime_error("timed out after " + std::to_string(seconds) + " s");
            }
            ok(cmd);
        } else if (cmd == "set_next_sender_seq" || cmd == "set_next_target_seq") {
            long n = 0;
            if (!parse_int(arg, n) || n < 1) throw std::runtime_error("want a sequence number >= 1, got '" + arg + "'");
            if (cmd == "set_next_sender_seq") session->setNextSenderMsgSeqNum(static_cast<int>(n));
            else session->setNextTargetMsgSeqNum(static_cast<int>(n));
            ok(cmd, seqnums(*session));
        } else if (cmd == "seqnums") {
            ok(cmd, seqnums(*session));
        } else if (cmd == "reset") {
            session->reset();
            ok(cmd, seqnums(*session));
        } else if (cmd == "disconnect") {
            disconnect();
            ok(cmd);
        } else if (cmd == "quit") {
            if (!logout_for_exit()) emit("event", "quit: no Logout from the counterparty within 5 s");
            ok(cmd);
            return false;
        } else {
            throw std::runtime_error("unknown command (see README.md)");
        }
        return true;
    }

    void send(const std::string& arg) {
        Fields fields;
        std::string error;
        if (!sable_fix::parse_fields(arg, fields, error)) throw std::runtime_error(error);
        OrderedMessage message;
        Fields header;
        bool have_type = false;
        for (const auto& field : fields) {
            int tag = field.first;
            if (tag == FIX::FIELD::BodyLength || tag == FIX::FIELD::CheckSum) {
                throw std::runtime_error("tag " + std::to_string(tag) + " is computed by QuickFIX");
            }
            if (tag == FIX::FIELD::MsgType) {
                message.getHeader().setField(FIX::MsgType(field.second));
                have_type = true;
            } else if (FIX::Message::isHeaderField(tag)) {
                header.push_back(field);
            } else if (FIX::Message::isTrailerField(tag)) {
                message.getTrailer().setField(tag, field.second);
            } else {
                message.append(tag, field.second);
            }
        }
        if (!have_type) throw std::runtime_error("no 35=<MsgType>");
        t_header_overrides = &header;
        bool sent = false;
        try {
            sent = FIX::Session::sendToTarget(message, m_id);
        } catch (...) {
            t_header_overrides = nullptr;
            throw;
        }
        t_header_overrides = nullptr;
        // QuickFIX stores (and numbers) an application message even when it cannot send it.
        if (!sent) throw std::runtime_error("not sent (not logged on?)");
        ok("send");
    }

    // Cuts the TCP connection like a network failure would: no Logout. The QuickFIX thread sees
    // the socket fail and disconnects the session itself; the session stays enabled, so
    // QuickFIX reconnects after ReconnectInterval.
    void disconnect() {
        bool found = false;
        for (const auto& s : sable_fix::own_tcp_sockets()) {
            if (s.peer_port == m_port) {
                ::shutdown(s.fd, SHUT_RDWR);
                found = true;
            }
        }
        if (!found) throw std::runtime_error("not connected");
    }

    static std::string seqnums(FIX::Session& session) {
        return "next_sender=" + std::to_string(session.getExpectedSenderNum()) +
               " next_target=" + std::to_string(session.getExpectedTargetNum());
    }

    static void ok(const std::string& cmd, const std::string& detail = "") {
        emit("ok", detail.empty() ? cmd : cmd + " " + detail);
    }

    Client& m_app;
    FIX::SessionID m_id;
    int m_port;
};

}  // namespace

int main(int argc, char** argv) {
    Options options = parse_args(argc, argv);
    long port = 0;
    if (!parse_int(options.port, port) || port <= 0 || port > 65535) usage_error("bad --port " + options.port);
    try {
        std::istringstream stream(settings_text(options));
        FIX::SessionSettings settings(stream);
        Client app(options.username, options.password, options.logon_fields);
        std::unique_ptr<FIX::MessageStoreFactory> store;
        if (options.store_dir.empty()) store.reset(new FIX::MemoryStoreFactory());
        else store.reset(new FIX::FileStoreFactory(settings));
        CountingStoreFactory counting(*store);
        sable_fix::EventLogFactory logs(options.log_dir);
        FIX::SocketInitiator initiator(app, counting, settings, logs);
        FIX::SessionID id("FIX.4.4", options.sender, options.target);
        initiator.start();
        emit("started", id.toString());

        Driver driver(app, id, static_cast<int>(port));
        std::string line;
        bool running = true;
        while (running && std::getline(std::cin, line)) running = driver.run(line);
        // stdin closed without `quit` (the driving test went away): log out all the same.
        if (running) driver.logout_for_exit();
        std::fflush(stdout);
        std::_Exit(0);
    } catch (const std::exception& e) {
        emit("error", std::string("startup: ") + e.what());
        std::cerr << "sable-fix-client: " << e.what() << "\n";
        return 1;
    }
}
