$msgs_per_s << EOD
64c_64B/1t 30724.4 14318.6 37616.0 18234.0 16053.2 27692.8 35267.5 19439.9 40895.1
64c_64B/2t 85081.4 45218.4 94167.4 25848.7 19822.6 58376.0 49016.8 27741.2 57892.5
256c_1KiB_d4/1t 114516.2 77537.3 136986.6 99496.1 65500.3 102330.0 119000.1 72817.9 142554.2
256c_1KiB_d4/2t 166020.8 104376.5 294248.1 128731.9 79272.3 229545.3 135746.1 79506.9 178448.8
EOD
$server_cpu_us_per_msg << EOD
64c_64B/1t 8.44 7.0466 9.7967 10.9391 9.8323 12.7207 7.5147 6.4673 8.2377
64c_64B/2t 6.9942 6.6862 7.2229 10.328 9.2229 10.5313 7.912 7.1392 8.8312
256c_1KiB_d4/1t 2.5684 2.2636 2.9084 3.2701 3.2191 3.6117 2.657 2.1086 2.9458
256c_1KiB_d4/2t 2.1744 2.0395 2.3606 3.0218 2.7898 3.7947 2.7058 2.2362 2.8199
EOD

set terminal pngcairo size 1400,560 font ',10' noenhanced
set output 'threads.png'
set multiplot layout 1,2 title 'Echo servers, 1 and 2 server threads (load generator on CPU 0; 1 thread: server on CPU 1; 2 threads: server on CPUs 0-1, sharing CPU 0 with the load generator). Median, bars: min..max'
set style data histograms
set style histogram errorbars gap 2 lw 1
set style fill solid 0.8 border -1
set key top left font ',9'
set grid ytics
set yrange [0:*]
set title 'messages per second (higher is better)'
set format y '%.0s%c'
plot $msgs_per_s using 2:3:4:xtic(1) title 'reactor_pool' , $msgs_per_s using 5:6:7:xtic(1) title 'reactor_tp' , $msgs_per_s using 8:9:10:xtic(1) title 'asio'
set title 'server CPU per message (µs, lower is better)'
set format y '%g'
plot $server_cpu_us_per_msg using 2:3:4:xtic(1) title 'reactor_pool' , $server_cpu_us_per_msg using 5:6:7:xtic(1) title 'reactor_tp' , $server_cpu_us_per_msg using 8:9:10:xtic(1) title 'asio'
unset multiplot
