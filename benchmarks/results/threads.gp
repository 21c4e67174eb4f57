$msgs_per_s << EOD
64c_64B/1t 46458.8 37513.3 55752.6 34760.7 31100.7 36857.8 42319.7 40494.0 57245.3
64c_64B/2t 74923.9 59864.5 87082.1 55169.6 50707.8 56866.9 62897.0 59689.8 80017.2
256c_1KiB_d4/1t 149957.3 138455.8 181290.4 130713.6 120991.7 145544.3 143169.4 135083.7 147920.2
256c_1KiB_d4/2t 189281.5 184070.6 219789.1 150232.1 139270.6 187879.3 207450.7 172088.6 249185.0
EOD
$server_cpu_us_per_msg << EOD
64c_64B/1t 8.7174 7.7284 11.5887 12.9476 12.073 14.6295 9.9247 7.5882 10.3889
64c_64B/2t 8.4742 7.9737 9.7009 14.5149 10.4647 15.2806 8.5027 6.9362 9.5497
256c_1KiB_d4/1t 3.0698 2.6082 3.3285 4.131 3.5729 4.6286 3.2855 2.9341 3.3527
256c_1KiB_d4/2t 3.0088 2.8498 3.4343 4.2069 3.4019 4.3545 2.9424 2.5907 3.4583
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
