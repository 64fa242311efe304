// sable-fix-echo-acceptor: a minimal FIX 4.4 acceptor on QuickFIX C++, the reference
// counterparty that lets gateway/tests/quickfix_harness.rs test sable-fix-client and its Rust
// harness without sable. It is not a model of sable: it answers every NewOrderSingle (D) with
// one ExecutionReport (8, ExecType=New) echoing the order, and nothing else.
//
// Prints `listening <port>` once it accepts connections (--port 0 picks a free port), then the
// same event lines as sable-fix-client (logon, logout, recv_app, recv_admin, sent_app,
// sent_admin, event, reject). Exits 0 when stdin closes or reads `quit`.

#include "sable_fix_common.h"

#include <quickfix/Application.h>
#include <quickfix/FileStore.h>
#include <quickfix/MessageStore.h>
#include <quickfix/Session.h>
#include <quickfix/SessionSettings.h>
#include <quickfix/SocketAcceptor.h>

#include <atomic>
#include <iostream>
#include <sstream>

using sable_fix::emit;
using sable_fix::to_pipes;

namespace {

const char USAGE[] =
    "usage: sable-fix-echo-acceptor --sender ID --target ID [--port N (0: any free port)]\n"
    "       [--username U --password P (required in Logon 553/554)] [--store-dir DIR]\n"
    "       [--log-dir DIR]\n";

class Echo : public FIX::Application {
public:
    Echo(std::string username, std::string password)
        : m_username(std::move(username)), m_password(std::move(password)) {}

    void onCreate(const FIX::SessionID&) override {}
    void onLogon(const FIX::SessionID&) override { emit("logon"); }
    void onLogout(const FIX::SessionID&) override { emit("logout"); }
    void toAdmin(FIX::Message&, const FIX::SessionID&) override {}
    void toApp(FIX::Message&, const FIX::SessionID&) throw(FIX::DoNotSend) override {}

    void fromAdmin(const FIX::Message& message, const FIX::SessionID&) throw(
        FIX::FieldNotFound, FIX::IncorrectDataFormat, FIX::IncorrectTagValue, FIX::RejectLogon) override {
        emit("recv_admin", to_pipes(message));
        if (message.getHeader().getField(FIX::FIELD::MsgType) != FIX::MsgType_Logon) return;
        if (m_username.empty() && m_password.empty()) return;
        std::string username = message.isSetField(FIX::FIELD::Username) ? message.getField(FIX::FIELD::Username) : "";
        std::string password = message.isSetField(FIX::FIELD::Password) ? message.getField(FIX::FIELD::Password) : "";
        // QuickFIX answers RejectLogon with a Logout carrying this text, then disconnects.
        if (username != m_username || password != m_password) throw FIX::RejectLogon("bad username or password");
    }

    void fromApp(const FIX::Message& message, const FIX::SessionID& id) throw(
        FIX::FieldNotFound, FIX::IncorrectDataFormat, FIX::IncorrectTagValue, FIX::UnsupportedMessageType) override {
        emit("recv_app", to_pipes(message));
        if (message.getHeader().getField(FIX::FIELD::MsgType) != FIX::MsgType_NewOrderSingle) return;
        long n = ++m_orders;
        FIX::Message report;
        report.getHeader().setField(FIX::MsgType(FIX::MsgType_ExecutionReport));
        report.setField(FIX::OrderID("O" + std::to_string(n)));
        report.setField(FIX::ExecID("E" + std::to_string(n)));
        report.setField(FIX::ExecType(FIX::ExecType_NEW));
        report.setField(FIX::OrdStatus(FIX::OrdStatus_NEW));
        report.setField(FIX::CumQty(0));
        report.setField(FIX::AvgPx(0));
        // Echo what the order said; a missing field is left out rather than invented.
        const int echoed[] = {FIX::FIELD::ClOrdID, FIX::FIELD::Symbol, FIX::FIELD::Side, FIX::FIELD::OrderQty,
                              FIX::FIELD::Price, FIX::FIELD::OrdType, FIX::FIELD::Account};
        for (int tag : echoed) {
            if (message.isSetField(tag)) report.setField(tag, message.getField(tag));
        }
        if (message.isSetField(FIX::FIELD::OrderQty)) report.setField(FIX::FIELD::LeavesQty, message.getField(FIX::FIELD::OrderQty));
        FIX::Session::sendToTarget(report, id);
    }

private:
    std::string m_username;
    std::string m_password;
    std::atomic<long> m_orders{0};
};

[[noreturn]] void usage_error(const std::string& message) {
    std::cerr << "sable-fix-echo-acceptor: " << message << "\n" << USAGE;
    std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
    std::string port = "0", sender, target, username, password, store_dir, log_dir;
    for (int i = 1; i < argc; ++i) {
        std::string flag = argv[i];
        if (flag == "--help" || flag == "-h") {
            std::cout << USAGE;
            return 0;
        }
        if (i + 1 >= argc) usage_error("missing value after " + flag);
        std::string value = argv[++i];
        if (flag == "--port") port = value;
        else if (flag == "--sender") sender = value;
        else if (flag == "--target") target = value;
        else if (flag == "--username") username = value;
        else if (flag == "--password") password = value;
        else if (flag == "--store-dir") store_dir = value;
        else if (flag == "--log-dir") log_dir = value;
        else usage_error("unknown flag " + flag);
    }
    if (sender.empty() || target.empty()) usage_error("--sender and --target are required");

    try {
        std::string text = "[DEFAULT]\nConnectionType=acceptor\nBeginString=FIX.4.4\nSenderCompID=" + sender +
                           "\nTargetCompID=" + target + "\nSocketAcceptPort=" + port +
                           "\nSocketReuseAddress=Y\nSocketNodelay=Y\nStartTime=00:00:00\nEndTime=00:00:00\n"
                           "UseDataDictionary=N\n";
        if (!store_dir.empty()) text += "FileStorePath=" + store_dir + "\n";
        text += "[SESSION]\n";  // inherits [DEFAULT], where QuickFIX 1.15 reads socket options
        std::istringstream stream(text);
        FIX::SessionSettings settings(stream);
        Echo app(username, password);
        std::unique_ptr<FIX::MessageStoreFactory> store;
        if (store_dir.empty()) store.reset(new FIX::MemoryStoreFactory());
        else store.reset(new FIX::FileStoreFactory(settings));
        sable_fix::EventLogFactory logs(log_dir);
        FIX::SocketAcceptor acceptor(app, *store, settings, logs);
        acceptor.start();  // binds the listening socket before returning

        int listening = 0;
        for (const auto& s : sable_fix::own_tcp_sockets()) {
            if (s.peer_port == 0 && s.local_port != 0) listening = s.local_port;
        }
        if (listening == 0) throw std::runtime_error("no listening socket found after start");
        emit("listening", std::to_string(listening));

        std::string line;
        while (std::getline(std::cin, line) && line.rfind("quit", 0) != 0) {
        }
        acceptor.stop(true);
        return 0;
    } catch (const std::exception& e) {
        emit("error", std::string("startup: ") + e.what());
        std::cerr << "sable-fix-echo-acceptor: " << e.what() << "\n";
        return 1;
    }
}
