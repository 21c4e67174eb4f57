
set terminal pngcairo size 1400,560 font ',10' noenhanced
set output 'echo.png'
set multiplot layout 1,2 title 'Echo servers on loopback, server on CPU 1, load generator on CPU 0 (median, bars: min..max)'
set style data histograms
set style histogram errorbars gap 2 lw 1
set style fill solid 0.8 border -1
set key top left font ',9'
set grid ytics
set xtics rotate by -20 font ',9'
set logscale y
set title 'server CPU per message (µs, log scale, lower is better)'
plot 'server_cpu_us_per_msg.dat' using 2:3:4:xtic(1) title 'epoll_raw' , 'server_cpu_us_per_msg.dat' using 5:6:7:xtic(1) title 'reactor_epoll' , 'server_cpu_us_per_msg.dat' using 8:9:10:xtic(1) title 'reactor_io_uring' , 'server_cpu_us_per_msg.dat' using 11:12:13:xtic(1) title 'reactor_coro' , 'server_cpu_us_per_msg.dat' using 14:15:16:xtic(1) title 'asio' , 'server_cpu_us_per_msg.dat' using 17:18:19:xtic(1) title 'libevent'
set title 'messages per second (log scale; bounded by the client and the machine, see client CPU %)'
set format y '%.0s%c'
plot 'msgs_per_s.dat' using 2:3:4:xtic(1) title 'epoll_raw' , 'msgs_per_s.dat' using 5:6:7:xtic(1) title 'reactor_epoll' , 'msgs_per_s.dat' using 8:9:10:xtic(1) title 'reactor_io_uring' , 'msgs_per_s.dat' using 11:12:13:xtic(1) title 'reactor_coro' , 'msgs_per_s.dat' using 14:15:16:xtic(1) title 'asio' , 'msgs_per_s.dat' using 17:18:19:xtic(1) title 'libevent'
unset multiplot
