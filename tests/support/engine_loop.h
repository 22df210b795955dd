// An event loop for an engine under test, as loop 0 is for the daemon's engine: an io_context
// run by its own thread from construction to destruction. Declare it before the engine it hosts,
// so the engine stops (on this loop) before the loop goes.
#pragma once

#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

namespace wspush::testing {

class EngineLoop {
public:
    EngineLoop() : thread_([this] { context_.run(); }) {}
    ~EngineLoop() {
        work_.reset();
        context_.stop();
        thread_.join();
    }
    EngineLoop(const EngineLoop&) = delete;
    EngineLoop& operator=(const EngineLoop&) = delete;

    boost::asio::io_context& context() { return context_; }

private:
    boost::asio::io_context context_;
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_{context_.get_executor()};
    std::thread thread_;
};

}  // namespace wspush::testing
